"""The fixed-width fast path must give exactly what the exact regex path gives."""

from __future__ import annotations

import gzip

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.ingest import parse_bytes
from engine.ingest.lines import split_lines
from engine.ingest.text import _parse_regex, parse_text
from tests.conftest import FIXTURES

TEXT_FIXTURES = sorted(
    p
    for p in (FIXTURES / "formats").glob("*")
    if any(f".{k}." in p.name or f".{k}-N." in p.name for k in ("line", "long", "extended"))
) + [FIXTURES / "real" / f"nfcapd.sample.nfdump-1.7.1.{k}.txt.gz" for k in ("extended", "long")]


def _lines(path) -> pl.DataFrame:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    texts = split_lines(data)
    return pl.DataFrame({"n": pl.int_range(1, texts.len() + 1, eager=True), "text": texts})


@pytest.mark.parametrize("path", TEXT_FIXTURES, ids=lambda p: p.name)
def test_fast_path_equals_regex_path(path):
    lines = _lines(path).slice(1)  # without the header
    fast, fast_rest = parse_text(lines, file="f")
    exact, exact_rest = _parse_regex(lines, file="f")
    assert_frame_equal(fast, exact)
    assert fast_rest["n"].sort().to_list() == exact_rest["n"].sort().to_list()


def test_values_wider_than_the_sample_fall_back_and_stay_right():
    row = (
        "2019-08-12 18:50:48.516     00:00:00.000 UDP      45.116.232.23:6615  ->  "
        "134.209.131.107:53    ........   0     3000   744000        0        0    248     1"
    )
    # the same line with a 3-digit tos and 8-digit packets, still at nfdump's widths
    wide = row.replace("........   0     3000", "........ 128 12345678")
    assert len(wide) == len(row)
    text = "\n".join([row] * 100 + [wide] + [row] * 10) + "\n"
    flows = parse_bytes(text.encode(), file="w", final=True).flows
    odd = flows.filter(pl.col("line") == 101).row(0, named=True)
    assert (odd["tos"], odd["packets"], odd["tcp_flags"]) == (128, 12345678, "........")
    assert flows.height == 111 and flows["tos"].sum() == 128


# nfdump 1.7.1 `-o line` of the IPv4-mapped IPv6 capture tests/nfdump_harness.py writes
# (build_mapped_capture, read by the real nfpcapd): IPv6 addresses with an IPv4 tail, as a
# UDP port and as an ICMP6 type.code
MAPPED_LINE = """\
2024-03-10 12:00:01.000     00:00:00.000 UDP   ::ffff:..100.200.40000 ->          fe80::1.53           1       88     1
2024-03-10 12:00:01.500     00:00:00.000 UDP            fe80::1.53    -> ::ffff:..100.200.40000        1      998     1
2024-03-10 12:00:02.000     00:00:00.000 UDP   ::ffff:192.0.2.1.40001 ->          fe80::1.53           1       88     1
2024-03-10 12:00:02.500     00:00:00.000 UDP            fe80::1.53    -> ::ffff:192.0.2.1.40001        1      998     1
2024-03-10 12:00:03.000     00:00:00.000 ICMP6          fe80::1.0     -> ::ffff:..100.200.1.4          1       96     1
2024-03-10 12:00:04.000     00:00:00.000 ICMP6          fe80::1.0     -> ::ffff:192.0.2.1.1.4          1       96     1
"""  # noqa: E501


def test_ipv4_tailed_ipv6_destinations_read_alike_on_both_paths():
    texts = pl.Series((MAPPED_LINE * 20).splitlines())  # enough rows for the fast path
    lines = pl.DataFrame({"n": pl.int_range(1, texts.len() + 1, eager=True), "text": texts})
    fast, fast_rest = parse_text(lines, file="f")
    exact, exact_rest = _parse_regex(lines, file="f")
    assert_frame_equal(fast, exact)
    assert fast_rest.height == exact_rest.height == 0
    got = fast.head(6).select("proto", "dst_addr", "dst_port").rows()
    assert got == [
        ("UDP", "fe80::1", 53),
        ("UDP", "::ffff:..100.200", 40000),
        ("UDP", "fe80::1", 53),
        ("UDP", "::ffff:192.0.2.1", 40001),
        ("ICMP6", "::ffff:..100.200", 1 * 256 + 4),
        ("ICMP6", "::ffff:192.0.2.1", 1 * 256 + 4),
    ]


# nfdump 1.7.1 `-o line` of the harness's NetFlow v5 flow per protocol number
# (V5_EVERY_PROTOCOL, read by the real nfcapd): names with '+', '.', '/' and a leading digit
PROTOCOL_NAMES_LINE = """\
2024-03-10 12:09:30.000     00:00:29.000 UDP           10.9.0.1:0     ->         10.9.0.2:0            1      117     1
2024-03-10 12:09:30.000     00:00:29.000 3PC           10.9.0.1:0     ->         10.9.0.2:0            1      134     1
2024-03-10 12:09:30.000     00:00:29.000 TP++          10.9.0.1:0     ->         10.9.0.2:0            1      139     1
2024-03-10 12:09:30.000     00:00:29.000 AX.25         10.9.0.1:0     ->         10.9.0.2:0            1      193     1
2024-03-10 12:09:30.000     00:00:29.000 A/N           10.9.0.1:0     ->         10.9.0.2:0            1      207     1
"""  # noqa: E501


def test_every_printed_protocol_name_reads_alike_on_both_paths():
    texts = pl.Series((PROTOCOL_NAMES_LINE * 20).splitlines())  # enough rows for the fast path
    lines = pl.DataFrame({"n": pl.int_range(1, texts.len() + 1, eager=True), "text": texts})
    fast, fast_rest = parse_text(lines, file="f")
    exact, exact_rest = _parse_regex(lines, file="f")
    assert_frame_equal(fast, exact)
    assert fast_rest.height == exact_rest.height == 0
    assert fast["proto"].head(5).to_list() == ["UDP", "3PC", "TP++", "AX.25", "A/N"]
