"""Hand-written lines for the details that bite: cut-off lines, compression, odd values."""

from __future__ import annotations

import bz2
import gzip
import lzma

import polars as pl
import pytest
import zstandard

from engine.ingest import Cursor, parse_bytes, read_dump
from engine.ingest.model import HEADER, MALFORMED, TRAILER

HEADER_171 = (
    "Date first seen             Duration     Proto      Src IP Addr:Port          "
    "Dst IP Addr:Port     Flags Tos  Packets    Bytes      pps      bps    Bpp Flows\n"
)
ROW_A = (
    "2019-08-12 18:50:48.516     00:00:00.000 UDP      45.116.232.23:6615  ->  "
    "134.209.131.107:53    ........  48     3000   744000        0        0    248     1\n"
)
ROW_B = (
    "2019-08-12 18:50:46.057     00:00:02.809 UDP     72.189.238.171:6672  ->   "
    "99.154.198.143:6672  ........   0     6000    1.2 M     2135    3.4 M    201     1\n"
)
TRAILER_171 = (
    "Summary: total flows: 2, total bytes: 1.9 M, total packets: 9000, avg bps: 0, avg pps: 0\n"
    "Time window: 2019-08-12 18:50:46 - 2019-08-12 18:50:48\n"
    "Total flows processed: 2, passed: 2, Blocks skipped: 0, Bytes read: 1000\n"
    "Sys: 0.0051s User: 0.0000s Wall: 0.0081s flows/second: 1237.8 Runtime: 0.0081s\n"
)
DUMP = (HEADER_171 + ROW_A + ROW_B + TRAILER_171).encode()


def test_whole_dump_flows_and_trailer_lines():
    result = parse_bytes(DUMP, file="d.txt", final=True)
    assert result.flows["line"].to_list() == [2, 3]
    assert result.format == "extended"
    assert [s.reason for s in result.skipped] == [HEADER] + [TRAILER] * 4
    assert result.flows["file"].unique().to_list() == ["d.txt"]


def test_cut_off_last_line_is_held_back_until_final():
    data = DUMP[: len(HEADER_171) + len(ROW_A) + 40]  # ROW_B cut mid-write
    first = parse_bytes(data, file="d")
    assert first.flows.height == 1
    assert first.cursor.offset == len(HEADER_171) + len(ROW_A) and first.cursor.line == 2
    again = parse_bytes(DUMP, file="d", cursor=first.cursor, final=True)
    assert again.flows["line"].to_list() == [3]
    assert again.flows["bytes"].to_list() == [1_200_000]
    final = parse_bytes(data, file="d", final=True)
    assert [s.reason for s in final.skipped if s.line == 3] == [MALFORMED]


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, bz2.compress, lzma.compress, zstandard.ZstdCompressor().compress],
    ids=["gz", "bz2", "xz", "zst"],
)
def test_compressed_dumps_by_content(tmp_path, compress):
    path = tmp_path / "nfcapd.202601010000"  # no suffix: detected from the magic bytes
    path.write_bytes(compress(DUMP))
    result = read_dump(path, final=True)
    assert result.flows["line"].to_list() == [2, 3]
    assert result.cursor.offset == len(DUMP)


def test_six_char_flags_numeric_flags_and_days():
    text = (
        b"2009-01-20 10:00:00.100     7.040 TCP        10.0.0.1:1234  ->     10.0.0.2:53    "
        b".A..S.   0       10      580     1\n"
        b"2009-01-20 10:00:00.200  2d 01:00:00.500 TCP   10.0.0.1:1235  ->     10.0.0.2:53    "
        b"18   0       10      580     1\n"
    )
    flows = parse_bytes(text, file="x", final=True).flows
    assert flows["tcp_flags"].to_list() == ["...A..S.", "...A..S."]
    assert flows["duration"].to_list() == [7.04, 2 * 86400 + 3600 + 0.5]
    assert str(flows["ts_last"][1]) == "2009-01-22 11:00:00.700000"


def test_end_before_start_keeps_the_flow_with_zero_duration():
    text = (
        b"2023-01-25 18:35:43.884 -2147483648d -2147483648:-2147483648:18446744073709540.000 "
        b"TCP         52.5.7.161:443   ->    170.80.156.33:57358 ...AP...   0        9      930"
        b"        0        0    103     1\n"
        b"2023-01-25 18:35:43.884 18446744073709540.000 6           52.5.7.161:443   ->    "
        b"170.80.156.33:57358 ...AP...   0        9      930        0        0    103     1\n"
    )
    flows = parse_bytes(text, file="x", final=True).flows
    assert flows.height == 2
    assert flows["duration"].to_list() == [0.0, 0.0]
    assert (flows["ts_last"] == flows["ts_first"]).all()
    assert flows["proto"].to_list() == ["TCP", "TCP"]


def test_csv_end_before_start_clamped_like_text():
    text = (
        b"ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt\n"
        b"2023-01-25 18:35:43,2023-01-25 18:35:33,18446744073709540.000,52.5.7.161,"
        b"170.80.156.33,443,57358,TCP,...AP...,0,0,9,930\n"
    )
    flows = parse_bytes(text, file="x", final=True).flows
    assert flows["duration"].to_list() == [0.0]
    assert flows["ts_last"].to_list() == flows["ts_first"].to_list()


def test_blank_and_garbage_lines_are_counted_never_fatal():
    data = (HEADER_171 + "\n" + ROW_A + "garbage \x1b[31m here\n" + ROW_B).encode()
    result = parse_bytes(data, file="g", final=True)
    assert result.flows["line"].to_list() == [3, 5]
    reasons = {s.line: s.reason for s in result.skipped}
    assert reasons == {1: "header", 2: "blank", 4: "not a flow record"}


def test_header_mid_file_switches_layout():
    csv = (
        "firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows\n"
        "2019-08-12 18:50:47.958,0.000,17,10.1.1.1,5353,10.2.2.2,53,1,80,1\n"
    )
    data = (HEADER_171 + ROW_A + csv).encode()
    result = parse_bytes(data, file="m", final=True)
    assert result.flows["line"].to_list() == [2, 4]
    assert result.flows["proto"].to_list() == ["UDP", "UDP"]
    assert result.format == "csv-1.7.6"
    assert result.flows["tcp_flags"].to_list() == ["........", None]


def test_csv_fast_epoch_is_converted_to_the_configured_zone():
    data = (
        b"cnt,af,firstSeen,lastSeen,proto,srcAddr,srcPort,dstAddr,dstPort,srcAS,dstAS,input,"
        b"output,flags,srcTos,packets,bytes\n"
        b"1,2,1565635848516,1565635848516,17,45.116.232.23,6615,134.209.131.107,53,0,0,0,0,"
        b"........,48,3000,744000\n"
    )
    utc = parse_bytes(data, file="f", final=True, timezone="UTC").flows
    berlin = parse_bytes(data, file="f", final=True, timezone="Europe/Berlin").flows
    assert str(utc["ts_first"][0]) == "2019-08-12 18:50:48.516000"
    assert str(berlin["ts_first"][0]) == "2019-08-12 20:50:48.516000"


def test_headerless_records_are_sniffed():
    result = parse_bytes(ROW_A.encode() + ROW_B.encode(), file="h", final=True)
    assert result.flows.height == 2 and result.format == "extended"
    assert result.cursor.layout == "sniffed:extended"


def test_cursor_round_trips_through_json():
    cursor = Cursor(offset=10, line=2, format="extended", layout=HEADER_171.rstrip("\n"))
    assert Cursor.from_json(cursor.to_json()) == cursor


def test_output_schema_for_empty_input():
    result = parse_bytes(b"", file="e")
    assert result.flows.height == 0 and result.cursor == Cursor()
    assert isinstance(result.flows, pl.DataFrame)


def test_invalid_utf8_and_control_bytes_are_skipped_lines_not_errors():
    data = ROW_A.encode() + b"bad \xff\xfe line\n" + ROW_B.encode() + b"\x00\x01 ctrl\n"
    result = parse_bytes(data, file="u", final=True)
    assert result.flows["line"].to_list() == [1, 3]
    assert [(s.line, s.reason) for s in result.skipped] == [
        (2, "not a flow record"),
        (4, "not a flow record"),
    ]
