"""Column layout at terminal widths, and compact cell formats."""

from __future__ import annotations

from tui import format as fmt
from tui.columns import FLOW_COLUMNS, SOURCE_COLUMNS, layout

IPV4 = {"src": 18, "dst": 14, "verdict": 13, "reason": 40}


def keys(columns):
    return [c.key for c, _ in columns]


def test_80_columns_keep_the_essentials_and_fill_the_line():
    shown = layout(FLOW_COLUMNS, 79, IPV4)
    assert keys(shown) == ["time", "score", "verdict", "proto", "src", "dst", "packets", "bytes"]
    assert sum(w for _, w in shown) + len(shown) - 1 == 79
    assert dict((c.key, w) for c, w in shown)["src"] == 18  # addresses are not cut at 80 columns


def test_wider_terminals_show_every_column():
    shown = layout(FLOW_COLUMNS, 120, IPV4)
    assert keys(shown) == [c.key for c in FLOW_COLUMNS]
    assert sum(w for _, w in shown) + len(shown) - 1 == 120


def test_long_ipv6_endpoints_are_cut_in_the_middle_keeping_the_port():
    shown = dict((c.key, w) for c, w in layout(FLOW_COLUMNS, 79, {**IPV4, "src": 44, "dst": 44}))
    assert shown["src"] < 44
    cut = fmt.fit("2001:db8:1234:5678:9abc:def0:1234:5678.53", shown["src"], middle=True)
    assert cut.endswith("5678.53") and "\u2026" in cut and len(cut) == shown["src"]


def test_sources_fit_80_columns():
    shown = layout(SOURCE_COLUMNS, 79, {"address": 15, "verdict": 13})
    assert {"address", "flows", "suspicious", "verdict", "score"} <= set(keys(shown))
    assert sum(w for _, w in shown) + len(shown) - 1 == 79


def test_compact_formats_fit_their_cells():
    assert [fmt.compact(v) for v in (0, 999, 1000, 9_949, 12_345, 999_499, 1_234_567)] == [
        "0", "999", "1.0k", "9.9k", "12k", "999k", "1.2M"]
    assert [fmt.duration(v) for v in (0, 0.123, 4.56, 42, 600, 7200, 200_000, -1)] == [
        "0", "0.12", "4.6", "42s", "10m", "2h", "2d", "<0"]
    assert fmt.score_cell(0.5) == " 50\u2588 " and fmt.score_cell(1.0) == "100\u2588\u2588"
    assert fmt.sparkline([0, 1, 2, 4, 8], 5) == " \u2581\u2582\u2584\u2588"
    assert fmt.fit("amplification", 8) == "amplifi\u2026"


def test_durations_in_text_carry_one_unit():
    # the reason line printed 25 s as "25ss", 63 s as "1ms" and 2 h as "2hs"
    assert [fmt.span(v) for v in (0, 0.25, 4.5, 25, 63, 7200, 200_000)] == [
        "0s", "0.25s", "4.5s", "25s", "1m03s", "2h00m", "2d07h"]


def test_icmp_shows_its_type_and_code_not_ports():
    # ICMP has no ports: nfdump folds type.code into the destination port (3 * 256 + 3)
    assert fmt.endpoint("10.0.0.1", 771, "ICMP") == "10.0.0.1:3.3"
    assert fmt.endpoint("10.0.0.1", 771, "ICMP", words=True) == "10.0.0.1 type 3 code 3"
    assert fmt.endpoint("10.0.0.2", 0, "ICMP") == "10.0.0.2"
    assert fmt.endpoint("10.0.0.1", 771, "UDP") == "10.0.0.1:771"
