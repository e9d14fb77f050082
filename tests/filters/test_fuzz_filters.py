"""Property-based: filters generated from the nfdump grammar (and garbage) never crash.

A generated filter either compiles, runs over real flows to a boolean per flow, and prints back
(format_filter) as text that parses to the same filter; or it is refused with a FilterError
that names a position inside the text. Nothing else may escape: no RecursionError, no polars
error, no IndexError. CI runs a short budget; FLOWTRIAGE_FUZZ_LONG=1 a long one.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.filters.language import FilterError, compile_filter, format_filter, parse_filter
from engine.ingest import read_dump
from tests.conftest import FIXTURES

FLOWS = read_dump(FIXTURES / "formats/isp-port53.nfdump-1.7.8.extended.txt.gz", final=True).flows
SHORT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
fuzz_long = pytest.mark.fuzz_long  # skipped unless FLOWTRIAGE_FUZZ_LONG=1 (tests/conftest.py)

NUMBERS = st.one_of(
    st.integers(0, 70000).map(str),
    st.sampled_from(["-1", "0", "65535", "65536", "1k", "1.5M", "4G", "99999999999999999999",
                     "1e3", "0x35", "", "nan"]),
)
ADDRESSES = st.sampled_from([
    "8.8.8.8", "10.0.0.0/8", "192.168.1.0/24", "2001:db8::1", "2001:db8::/32", "::ffff:1.2.3.4",
    "300.1.1.1", "1.2.3", "10.0.0.0/33", "2001:db8..2", "", "localhost", "::", "0.0.0.0/0",
])
COMPARATORS = st.sampled_from(["", "=", "==", ">", "<", ">=", "<=", "!=", "eq", "gt", "lt", "=>"])
WORDS = st.sampled_from([
    "any", "proto", "udp", "tcp", "icmp", "ICMP6", "47", "300", "src", "dst", "ip", "host",
    "net", "port", "in", "tos", "flags", "S", "AS", "XYZ", "ipv4", "ipv6", "packets", "bytes",
    "flows", "duration", "pps", "bps", "bpp", "and", "or", "not", "(", ")", "[", "]", "as",
    "router", "vlan", "&&", "||", "!", "'", '"', "\x1b[2J", "\u202e",
])


def primitive() -> st.SearchStrategy[str]:
    side = st.sampled_from(["", "src ", "dst ", "src and dst ", "src or dst "])
    return st.one_of(
        st.just("any"),
        st.sampled_from(["udp", "tcp", "icmp", "icmp6", "gre", "47", "999", "-"]).map(lambda p: f"proto {p}"),
        st.tuples(side, COMPARATORS, NUMBERS).map(lambda t: f"{t[0]}port {t[1]} {t[2]}"),
        st.tuples(side, st.lists(NUMBERS, max_size=4)).map(lambda t: f"{t[0]}port in [{' '.join(t[1])}]"),
        st.tuples(side, ADDRESSES).map(lambda t: f"{t[0]}ip {t[1]}"),
        st.tuples(side, ADDRESSES).map(lambda t: f"{t[0]}net {t[1]}"),
        st.tuples(st.sampled_from(["packets", "bytes", "flows", "duration", "pps", "bps", "bpp"]),
                  COMPARATORS, NUMBERS).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(COMPARATORS, NUMBERS).map(lambda t: f"tos {t[0]} {t[1]}"),
        st.sampled_from(["S", "AS", "UAPRSF", "X", "", "SSS"]).map(lambda f: f"flags {f}"),
        st.sampled_from(["ipv4", "ipv6", "inet", "inet6"]),
    )


def expression() -> st.SearchStrategy[str]:
    return st.recursive(
        primitive(),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or", "&&", "||"]), inner).map(" ".join),
            inner.map(lambda e: f"not {e}"),
            inner.map(lambda e: f"({e})"),
        ),
        max_leaves=12,
    )


def _check(text: str) -> None:
    try:
        node = parse_filter(text)
        expr = compile_filter(text)
    except FilterError as exc:
        assert str(exc)
        return
    matched = FLOWS.with_columns(m=expr)["m"]  # a literal (any) broadcasts
    assert matched.len() == FLOWS.height and matched.null_count() == 0
    again = parse_filter(format_filter(node))  # printed back, it means the same
    assert FLOWS.with_columns(m=compile_filter(format_filter(again)))["m"].equals(matched)


@SHORT
@given(expression())
def test_grammar_filters_compile_run_and_print_back_or_are_refused(text):
    _check(text)


@SHORT
@given(st.lists(WORDS, max_size=12).map(" ".join))
def test_word_salad_is_refused_with_a_filter_error_or_compiles(text):
    _check(text)


@SHORT
@given(st.text(max_size=80))
def test_arbitrary_text_is_refused_with_a_filter_error_or_compiles(text):
    _check(text)


def test_absurd_nesting_is_refused_not_a_recursion_error():
    for text in ["(" * 5000 + "any" + ")" * 5000, "not " * 5000 + "any"]:
        with pytest.raises(FilterError):
            compile_filter(text)


@fuzz_long
@LONG
@given(expression())
def test_long_grammar_filters(text):
    _check(text)
