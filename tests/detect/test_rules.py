"""The nfdump filter compiler and RuleSet on hand-made flows: grammar, operators, errors, rules."""

from __future__ import annotations

import polars as pl
import pytest

from engine.config.settings import Config, RuleConfig
from engine.core.schema import FLOW_SCHEMA
from engine.detect.rules import FilterError, Rule, RuleError, RuleSet, compile_filter
from engine.filters.language import And, Compare, Not, Or, format_filter, parse_filter

BASE = {
    "ts_first": None,
    "ts_last": None,
    "duration": 0.0,
    "proto": "UDP",
    "src_addr": "192.0.2.10",
    "src_port": 40000,
    "dst_addr": "198.51.100.53",
    "dst_port": 53,
    "tcp_flags": "........",
    "tos": 0,
    "packets": 1,
    "bytes": 60,
    "flows": 1,
    "approx": False,
    "file": "hand",
    "line": 0,
}


def flows(*rows: dict) -> pl.DataFrame:
    """Canonical flows from partial rows (unspecified columns take BASE values)."""
    full = [{**BASE, "line": i + 1, **row} for i, row in enumerate(rows)]
    return pl.DataFrame(full, schema=FLOW_SCHEMA)


def selected(text: str, df: pl.DataFrame) -> list[int]:
    """The 1-based `line` of each flow the filter selects."""
    return df.filter(compile_filter(text))["line"].to_list()


# ------------------------------------------------------------------------- parsing, precedence

def test_precedence_not_binds_tighter_than_and_tighter_than_or():
    ast = parse_filter("not packets > 1 and bytes > 2 or flows > 3")
    assert ast == Or(
        (
            And((Not(Compare("packets", ">", 1)), Compare("bytes", ">", 2))),
            Compare("flows", ">", 3),
        )
    )


def test_parentheses_override_precedence():
    ast = parse_filter("not (packets > 1 and (bytes > 2 or flows > 3))")
    assert ast == Not(And((Compare("packets", ">", 1), Or((Compare("bytes", ">", 2), Compare("flows", ">", 3))))))


def test_precedence_on_data():
    df = flows({"packets": 1, "bytes": 10}, {"packets": 5, "bytes": 10}, {"packets": 5, "bytes": 99})
    # a or b and c == a or (b and c)
    assert selected("packets = 1 or packets = 5 and bytes = 99", df) == [1, 3]
    assert selected("(packets = 1 or packets = 5) and bytes = 99", df) == [3]
    assert selected("not packets = 1 and bytes = 10", df) == [2]
    assert selected("not (packets = 1 and bytes = 10)", df) == [2, 3]


def test_keywords_are_case_insensitive_and_symbols_equal_words():
    df = flows({"proto": "TCP"}, {"proto": "UDP"}, {"proto": "UDP", "src_port": 53})
    assert selected("PROTO Udp AND NOT Src Port 53", df) == [2]
    assert selected("proto udp && ! src port 53", df) == [2]
    assert selected("proto tcp || src port 53", df) == [1, 3]


def test_any_and_empty_filter_match_everything():
    df = flows({}, {"packets": 9})
    assert selected("any", df) == [1, 2]
    assert selected("", df) == [1, 2]
    assert selected("  # only a comment", df) == [1, 2]
    assert selected("not any", df) == []


def test_comment_runs_to_end_of_line_and_filters_may_span_lines():
    df = flows({"packets": 1}, {"packets": 2})
    assert selected("packets = 2 # the second\nor packets = 1", df) == [1, 2]


# ------------------------------------------------------------------------- every primitive

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("packets > 10", [3]),
        ("packets >= 10", [2, 3]),
        ("packets => 10", [2, 3]),  # the field talk's spelling
        ("packets < 10", [1]),
        ("packets <= 10", [1, 2]),
        ("packets = 10", [2]),
        ("packets == 10", [2]),
        ("packets 10", [2]),  # comparator omitted: ==
        ("packets eq 10", [2]),
        ("packets gt 10", [3]),
        ("packets lt 10", [1]),
        ("packets ge 10", [2, 3]),
        ("packets le 10", [1, 2]),
        ("packets>=10", [2, 3]),
    ],
)
def test_comparators(text, expected):
    df = flows({"packets": 1}, {"packets": 10}, {"packets": 2000})
    assert selected(text, df) == expected


def test_number_suffixes_scale_by_1000_and_hex():
    df = flows({"bytes": 999}, {"bytes": 1000}, {"bytes": 2_000_000}, {"bytes": 3_000_000_000})
    assert selected("bytes >= 1k", df) == [2, 3, 4]
    assert selected("bytes > 1K", df) == [3, 4]
    assert selected("bytes = 2m", df) == [3]
    assert selected("bytes >= 3g", df) == [4]
    assert selected("bytes < 0x3e8", df) == [1]
    assert selected("bytes < 1t", df) == [1, 2, 3, 4]


def test_proto_by_name_number_and_as_printed():
    df = flows({"proto": "TCP"}, {"proto": "UDP"}, {"proto": "ICMP"}, {"proto": "ICMP6"},
               {"proto": "GRE"}, {"proto": "ESP"}, {"proto": "99"}, {"proto": "17"})
    assert selected("proto tcp", df) == [1]
    assert selected("proto 6", df) == [1]
    assert selected("proto udp", df) == [2, 8]
    assert selected("proto 17", df) == [2, 8]
    assert selected("proto icmp", df) == [3]
    assert selected("proto icmp6", df) == [4]
    assert selected("proto 58", df) == [4]
    assert selected("proto gre or proto esp", df) == [5, 6]
    assert selected("proto 99", df) == [7]


def test_ports_either_side_and_directed():
    df = flows({"src_port": 53, "dst_port": 1}, {"src_port": 1, "dst_port": 53},
               {"src_port": 853, "dst_port": 1}, {"src_port": 53, "dst_port": 53})
    assert selected("port 53", df) == [1, 2, 4]
    assert selected("src port 53", df) == [1, 4]
    assert selected("dst port 53", df) == [2, 4]
    assert selected("src and dst port 53", df) == [4]
    assert selected("src or dst port 53", df) == [1, 2, 4]
    assert selected("src port > 100", df) == [3]
    assert selected("port in [53 853]", df) == [1, 2, 3, 4]
    assert selected("src port in [ 853, 54 ]", df) == [3]


def test_ipv4_host_and_net():
    df = flows(
        {"src_addr": "10.1.2.3", "dst_addr": "192.168.0.1"},
        {"src_addr": "192.168.0.1", "dst_addr": "10.255.255.255"},
        {"src_addr": "11.0.0.0", "dst_addr": "9.255.255.255"},
        {"src_addr": "172.16.5.4", "dst_addr": "172.31.255.1"},
        {"src_addr": "2001:db8::1", "dst_addr": "2001:db8::2"},
    )
    assert selected("ip 10.1.2.3", df) == [1]
    assert selected("host 192.168.0.1", df) == [1, 2]
    assert selected("src host 192.168.0.1", df) == [2]
    assert selected("dst ip 192.168.0.1", df) == [1]
    assert selected("net 10.0.0.0/8", df) == [1, 2]
    assert selected("src net 10.0.0.0/8", df) == [1]
    assert selected("dst net 10.0.0.0/8", df) == [2]
    assert selected("net 10.0.0.0 255.0.0.0", df) == [1, 2]
    assert selected("net 10.1.2.99/24", df) == [1]  # host bits are masked, as in nfdump
    assert selected("src net 172.16.0.0/12 and dst net 172.16.0.0/12", df) == [4]
    assert selected("net 0.0.0.0/0", df) == [1, 2, 3, 4]
    assert selected("ip in [10.1.2.3 172.16.0.0/16]", df) == [1, 4]


def test_ipv6_host_and_net_match_full_addresses_but_never_shortened_ones():
    df = flows(
        {"src_addr": "2001:db8::1", "dst_addr": "2001:db8:0:0:0:0:0:35"},
        {"src_addr": "2001:DB8:1::5", "dst_addr": "fd00::1"},
        {"src_addr": "2001:db8..1", "dst_addr": "fd00::2"},  # `..`-shortened by nfdump: unknowable
        {"src_addr": "10.0.0.1", "dst_addr": "10.0.0.2"},
    )
    assert selected("ip 2001:db8::1", df) == [1]
    assert selected("dst host 2001:db8::35", df) == [1]
    assert selected("src net 2001:db8::/32", df) == [1, 2]
    assert selected("net 2001:db8:1::/48", df) == [2]
    assert selected("net fd00::/8", df) == [2, 3]
    assert selected("ipv6", df) == [1, 2, 3]
    assert selected("inet6", df) == [1, 2, 3]
    assert selected("ipv4", df) == [4]
    assert selected("inet", df) == [4]


def test_duration_is_milliseconds():
    df = flows({"duration": 0.999}, {"duration": 1.0}, {"duration": 1.001}, {"duration": 0.0})
    assert selected("duration > 1000", df) == [3]
    assert selected("duration >= 1000", df) == [2, 3]
    assert selected("duration = 999", df) == [1]
    assert selected("duration = 0", df) == [4]


def test_pps_bps_bpp_like_nfdump():
    df = flows(
        {"packets": 10, "bytes": 1000, "duration": 2.0},  # pps 5, bps 4000, bpp 100
        {"packets": 3, "bytes": 100, "duration": 0.0},  # no duration: pps = bps = 0; bpp 33
        {"packets": 0, "bytes": 0, "duration": 1.0},  # no packets: bpp 0
        {"packets": 7, "bytes": 701, "duration": 3.0},  # pps 2.33 -> 2, bpp 100.14 -> 100
    )
    assert selected("pps = 5", df) == [1]
    assert selected("pps = 0", df) == [2, 3]
    assert selected("pps = 2", df) == [4]
    assert selected("bps = 4000", df) == [1]
    assert selected("bps > 1k", df) == [1, 4]  # 8*701/3 = 1869
    assert selected("bpp = 100", df) == [1, 4]
    assert selected("bpp > 100", df) == []  # truncated before comparing, as nfdump does
    assert selected("bpp = 33", df) == [2]
    assert selected("bpp = 0", df) == [3]


def test_flags_all_named_set_and_numeric():
    df = flows(
        {"proto": "TCP", "tcp_flags": "......S."},
        {"proto": "TCP", "tcp_flags": "...A..S."},
        {"proto": "TCP", "tcp_flags": "...AP..F"},
        {"proto": "TCP", "tcp_flags": "..UAPRSF"},
        {"proto": "UDP", "tcp_flags": "........"},
    )
    assert selected("flags S", df) == [1, 2, 4]
    assert selected("flags SA", df) == [2, 4]
    assert selected("flags AS", df) == [2, 4]
    assert selected("flags S and not flags A", df) == [1]
    assert selected("flags X", df) == [4]
    assert selected("flags 2", df) == [1]  # numeric: the whole flag byte
    assert selected("flags > 16", df) == [2, 3, 4]
    assert selected("not flags F", df) == [1, 2, 5]


def test_tos_and_flows():
    df = flows({"tos": 0, "flows": 1}, {"tos": 184, "flows": 3})
    assert selected("tos 184", df) == [2]
    assert selected("src tos > 0", df) == [2]
    assert selected("flows > 1", df) == [2]


def test_null_fields_never_match_and_not_inverts_cleanly():
    df = flows({"src_port": None, "dst_port": None}, {"src_port": 53})
    assert selected("port 53", df) == [2]
    assert selected("not port 53", df) == [1]


def test_compiled_expression_works_lazily_and_is_reusable():
    expr = compile_filter("proto udp and port 53")
    df = flows({}, {"proto": "TCP"})
    assert df.lazy().filter(expr).collect()["line"].to_list() == [1]
    assert df.with_columns(hit=expr)["hit"].to_list() == [True, False]


def test_compiled_expression_runs_on_the_streaming_engine():
    expr = compile_filter("net 10.0.0.0/8 or net 2001:db8::/32 or port 53")
    df = flows({"src_addr": "10.0.0.1", "dst_port": 1}, {"src_addr": "2001:db8::9", "dst_port": 1}, {"dst_port": 1})
    assert df.lazy().filter(expr).collect(engine="streaming")["line"].to_list() == [1, 2]


def test_grouping_does_not_change_the_ast():
    assert parse_filter("(port 53 or proto tcp) or bytes > 1") == parse_filter("port 53 or (proto tcp or bytes > 1)")
    assert parse_filter("port 53 and (proto udp and bytes > 1)") == parse_filter("(port 53 and proto udp) and bytes > 1")


@pytest.mark.parametrize(
    "text",
    [
        "not packets > 1 and bytes > 2 or flows > 3",
        "not (packets > 1 and (bytes > 2 or flows > 3))",
        "proto udp and not (src port 53 or dst port 53)",
        "src and dst port 53 or src or dst port 853",
        "port in [53 853] and not flags SA",
        "ip in [10.1.2.3 172.16.0.0/16 2001:db8::/32] and ipv4",
        "net 10.0.0.0 255.0.0.0 and not host 10.0.0.1 or inet6",
        "proto 99 or proto icmp6 or proto ipv6 or proto 0x11",
        "flags X or flags > 16 or flags 2",
        "duration >= 1000 and pps > 1k and bps < 1m and bpp = 100 and tos 184",
        "not not any",
        *[rc.filter for rc in Config().rules],
    ],
)
def test_format_filter_round_trips(text):
    ast = parse_filter(text)
    assert parse_filter(format_filter(ast)) == ast


# ------------------------------------------------------------------------- errors

@pytest.mark.parametrize(
    ("text", "position", "expected", "reason"),
    [
        ("packets > x", 10, "a number", "expected a number after 'packets >'"),
        ("packets >", 9, "a number", "expected a number after 'packets >', found end of filter"),
        ("prot udp", 0, "a filter primitive", "unknown keyword 'prot' (did you mean 'proto'?)"),
        ("packets > 1 and byts > 2", 16, "a filter primitive", "unknown keyword 'byts' (did you mean 'bytes'?)"),
        ("frobnicate", 0, "a filter primitive", "unknown keyword 'frobnicate'"),
        ("port 53)", 7, "'and', 'or'", "unbalanced ')'"),
        ("(port 53", 8, "')'", "unbalanced '('"),
        (")", 0, "a filter primitive", "unbalanced ')'"),
        ("port 53 and", 11, "a filter primitive", "expected a filter primitive after 'and'"),
        ("port 53 or or port 54", 11, "a filter primitive", "after 'or'"),
        ("not", 3, "a filter primitive", "after 'not'"),
        ("port 53 port 54", 8, "'and', 'or'", "unexpected 'port'"),
        ("proto xyz", 6, "a protocol", "unknown protocol 'xyz'"),
        ("proto", 5, "a protocol", "expected a protocol name or number after 'proto'"),
        ("port 70000", 5, "a number in 0..65535", "outside 0..65535"),
        ("src packets > 1", 4, "ip, host, net, port or tos", "after 'src'"),
        ("src", 3, "ip, host, net, port or tos", "after 'src', found end of filter"),
        ("src or dst", 10, "ip, host, net, port or tos", "after 'src or dst', found end of filter"),
        ("host foo.example", 5, "an IPv4 or IPv6 address", "host names are not resolved"),
        ("ip 10.0.0", 3, "an IPv4 or IPv6 address", "expected an IP address"),
        ("net 10.0.0.0", 12, "'/bits' or a netmask", "after 'net 10.0.0.0'"),
        ("net 10.0.0.0/33", 13, "a number in 0..32", "prefix length 33"),
        ("net 10.0.0.0 255.0.255.0", 13, "a contiguous netmask", "invalid netmask"),
        ("flags SZ", 7, "TCP flag letters", "unknown TCP flag 'Z'"),
        ("bytes != 3", 6, "one of = == > < >= <=", "'!=' is not an nfdump comparator"),
        ("duration > 1.5", 11, "a number", "found '1.5'"),
        ("bytes = = 1", 8, "a number", "expected a number after 'bytes ='"),
        ("as 3356", 0, "a filter primitive", "nfdump keyword 'as' is not supported"),
        ("port 53 and $x", 12, "a keyword", "unexpected character '$'"),
        ("port in [53", 11, "']'", "expected ']'"),
        ("proto udp and (port 53 or (bytes > 1)", 37, "')'", "unbalanced '(' opened at position 14"),
    ],
)
def test_filter_errors_carry_position_and_expectation(text, position, expected, reason):
    with pytest.raises(FilterError) as info:
        compile_filter(text)
    err = info.value
    assert err.position == position, str(err)
    assert expected in err.expected, err.expected
    assert reason in err.reason, err.reason


def test_absurd_nesting_is_a_filter_error_not_a_crash():
    assert selected("(" * 100 + "any" + ")" * 100, flows({})) == [1]
    with pytest.raises(FilterError, match="nests deeper than 100") as info:
        compile_filter("(" * 5000 + "any" + ")" * 5000)
    assert info.value.position == 100
    with pytest.raises(FilterError, match="nests deeper"):
        compile_filter("not " * 3000 + "any")


def test_filter_error_message_points_a_caret_at_the_position():
    with pytest.raises(FilterError) as info:
        compile_filter("proto udp and packets > lots")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("expected a number after 'packets >'")
    assert lines[1] == "  proto udp and packets > lots"
    assert lines[2] == "  " + " " * 24 + "^"


def test_filter_error_caret_on_the_right_line_of_a_multi_line_filter():
    with pytest.raises(FilterError) as info:
        compile_filter("port 53\nand byts > 1")
    assert info.value.position == 12
    assert str(info.value).splitlines()[1:] == ["  and byts > 1", "      ^"]


# ------------------------------------------------------------------------- the five default rules

RULES = {rc.name: rc for rc in Config().rules}


def fires(name: str, **row) -> bool:
    return bool(flows(row).select(compile_filter(RULES[name].filter)).item())


def test_the_five_defaults_are_the_design_rules():
    assert list(RULES) == ["amplification", "scan", "zero_packet", "open_resolver", "tunnel"]
    assert RuleSet.from_config(Config().rules).rules[0].severity == 0.8


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"proto": "UDP", "src_port": 53, "packets": 1001, "bytes": 50_000}, True),
        ({"proto": "UDP", "src_port": 53, "packets": 1000, "bytes": 900}, False),
        ({"proto": "UDP", "src_port": 53, "packets": 1000, "bytes": 901}, True),
        ({"proto": "UDP", "src_port": 53, "packets": 1, "bytes": 901}, True),
        ({"proto": "UDP", "src_port": 53, "packets": 1, "bytes": 900}, False),
        ({"proto": "UDP", "src_port": 53, "packets": 1001, "bytes": 100}, True),
        ({"proto": "UDP", "src_port": 1234, "dst_port": 53, "packets": 2000, "bytes": 9000}, False),
        ({"proto": "TCP", "src_port": 53, "packets": 2000, "bytes": 9000}, False),
    ],
)
def test_amplification_boundaries(row, expected):
    assert fires("amplification", **row) is expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"proto": "TCP", "dst_port": 53, "packets": 1, "bytes": 58}, True),
        ({"proto": "TCP", "dst_port": 53, "packets": 1, "bytes": 57}, False),
        ({"proto": "TCP", "dst_port": 53, "packets": 1, "bytes": 59}, False),
        ({"proto": "TCP", "dst_port": 53, "packets": 0, "bytes": 58}, False),
        ({"proto": "UDP", "dst_port": 53, "packets": 1, "bytes": 58}, False),
        ({"proto": "TCP", "src_port": 53, "dst_port": 999, "packets": 1, "bytes": 58}, False),
    ],
)
def test_scan_boundaries(row, expected):
    assert fires("scan", **row) is expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"proto": "UDP", "dst_port": 53, "packets": 1, "bytes": 40}, True),
        ({"proto": "UDP", "dst_port": 53, "packets": 1, "bytes": 41}, False),
        ({"proto": "TCP", "src_port": 53, "dst_port": 80, "packets": 1, "bytes": 28}, True),
        ({"proto": "UDP", "dst_port": 53, "packets": 0, "bytes": 0}, False),
        ({"proto": "ICMP", "dst_port": 53, "packets": 1, "bytes": 28}, False),
        ({"proto": "UDP", "src_port": 5353, "dst_port": 5353, "packets": 1, "bytes": 28}, False),
    ],
)
def test_zero_packet_boundaries(row, expected):
    assert fires("zero_packet", **row) is expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"proto": "UDP", "src_port": 53, "dst_port": 999, "packets": 1, "bytes": 45}, True),
        ({"proto": "TCP", "src_port": 53, "dst_port": 999, "packets": 1, "bytes": 45}, True),
        ({"proto": "UDP", "src_port": 53, "dst_port": 999, "packets": 1, "bytes": 44}, False),
        ({"proto": "UDP", "src_port": 53, "dst_port": 999, "packets": 1, "bytes": 46}, False),
        ({"proto": "UDP", "src_port": 999, "dst_port": 53, "packets": 1, "bytes": 45}, False),
        ({"proto": "UDP", "src_port": 53, "packets": 0, "bytes": 45}, False),
    ],
)
def test_open_resolver_boundaries(row, expected):
    assert fires("open_resolver", **row) is expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"proto": "UDP", "dst_port": 53, "packets": 1, "bytes": 150}, False),
        ({"proto": "UDP", "dst_port": 53, "packets": 1, "bytes": 151}, True),
        ({"proto": "UDP", "dst_port": 53, "packets": 1, "bytes": 160}, True),
        ({"proto": "UDP", "dst_port": 53, "packets": 1, "bytes": 161}, False),
        ({"proto": "TCP", "src_port": 53, "dst_port": 80, "packets": 1, "bytes": 155}, True),
        ({"proto": "GRE", "dst_port": 53, "packets": 1, "bytes": 155}, False),
        ({"proto": "UDP", "dst_port": 53, "packets": 0, "bytes": 155}, False),
    ],
)
def test_tunnel_boundaries(row, expected):
    assert fires("tunnel", **row) is expected


# ------------------------------------------------------------------------- RuleSet

def rc(name, label, filt, severity):
    return RuleConfig(name=name, label=label, filter=filt, severity=severity)


def test_apply_one_row_per_flow_in_order_with_label_names_severity():
    ruleset = RuleSet.from_config(
        [
            rc("small", "zero_packet", "bytes < 100", 0.3),
            rc("dns", "scan", "port 53", 0.6),
            rc("big", "amplification", "bytes > 1000", 0.9),
            rc("also-dns", "tunnel", "dst port 53", 0.6),
        ]
    )
    df = flows(
        {"bytes": 50, "dst_port": 80},  # small only
        {"bytes": 50, "dst_port": 53},  # small, dns, also-dns: tie at 0.6 -> dns (first)
        {"bytes": 5000, "dst_port": 53},  # dns, big, also-dns -> big
        {"bytes": 500, "dst_port": 80},  # none
    )
    out = ruleset.apply(df)
    assert out.schema == pl.Schema({"rule_label": pl.String, "rule_names": pl.String, "rule_severity": pl.Float64})
    assert out["rule_label"].to_list() == ["zero_packet", "scan", "amplification", None]
    assert out["rule_names"].to_list() == ["small", "small,dns,also-dns", "dns,big,also-dns", ""]
    assert out["rule_severity"].to_list() == [0.3, 0.6, 0.9, 0.0]


def test_apply_on_lazy_frames_and_columns_for_pipelines():
    ruleset = RuleSet.from_config(Config().rules)
    df = flows({"proto": "UDP", "dst_port": 53, "bytes": 155}, {"bytes": 60})
    assert ruleset.apply(df.lazy()).equals(ruleset.apply(df))
    scored = df.lazy().with_columns(ruleset.columns()).collect()
    assert scored["rule_label"].to_list() == ["tunnel", None]
    matches = df.select(ruleset.match_columns())
    assert matches.columns == ["amplification", "scan", "zero_packet", "open_resolver", "tunnel"]
    assert matches.row(0) == (False, False, False, False, True)


def test_apply_with_no_rules_or_no_flows():
    empty = RuleSet()
    out = empty.apply(flows({}, {}))
    assert out.height == 2
    assert out["rule_names"].to_list() == ["", ""]
    assert out["rule_severity"].to_list() == [0.0, 0.0]
    assert out["rule_label"].to_list() == [None, None]
    assert RuleSet.from_config(Config().rules).apply(pl.DataFrame(schema=FLOW_SCHEMA)).height == 0


def test_from_config_names_the_bad_rule():
    with pytest.raises(RuleError) as info:
        RuleSet.from_config([rc("ok", "scan", "port 53", 0.5), rc("broken", "scan", "port 53 and bytes >", 0.5)])
    err = info.value
    assert err.rule == "broken"
    assert "rule 'broken'" in str(err)
    assert isinstance(err.filter_error, FilterError)
    assert err.filter_error.position == len("port 53 and bytes >")
    assert "^" in str(err)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "label": "scan", "filter": "  ", "severity": 0.5}, "empty filter"),
        ({"name": "a,b", "label": "scan", "filter": "any", "severity": 0.5}, "no comma"),
        ({"name": "x", "label": "", "filter": "any", "severity": 0.5}, "needs a label"),
        ({"name": "x", "label": "scan", "filter": "any", "severity": float("nan")}, "severity"),
        ({"name": "x", "label": "scan", "filter": "any", "severity": -1.0}, "severity"),
        ({"name": "x", "label": "scan", "filter": "any", "severity": 1.5}, "between 0 and 1"),
    ],
)
def test_rule_validation(kwargs, message):
    with pytest.raises(RuleError, match=message):
        Rule(**kwargs)


def test_duplicate_rule_names_are_rejected():
    with pytest.raises(RuleError, match="duplicate"):
        RuleSet.from_config([rc("a", "scan", "any", 0.5), rc("a", "scan", "any", 0.5)])
