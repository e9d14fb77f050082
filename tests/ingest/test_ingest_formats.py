"""Every nfdump version/format of the same real flows parses to the same flows."""

from __future__ import annotations

import gzip
import math
import re

import polars as pl
import pytest

from engine.core.schema import FLOW_SCHEMA
from engine.ingest import BENIGN_REASONS, read_dump
from tests.conftest import FIXTURES

FORMATS = FIXTURES / "formats"
SETS = {"small-lzo": (10, 123000, 87993000), "isp-port53": (1075, 3675000, 1329321000)}
FILES = sorted(FORMATS.glob("*.txt*"))
KEY = ["src_addr", "src_port", "dst_addr", "dst_port", "proto"]


def _text(path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()


def _nfdump_count(path) -> int | None:
    """The flow count nfdump itself printed into the file (trailer, csv summary, json objects)."""
    text = _text(path)
    if m := re.search(r"Summary: total flows: (\d+)", text):
        return int(m.group(1))
    if m := re.search(r"\nflows,bytes,packets[^\n]*\n(\d+),", text):
        return int(m.group(1))
    if ".json" in path.name:
        return len(re.findall(r"^\s*\{\s*$", text, re.M))
    if ".ndjson" in path.name:
        return len([ln for ln in text.splitlines() if ln.startswith("{")])
    return None


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_flow_count_matches_what_nfdump_printed(path):
    result = read_dump(path, final=True)
    assert result.flows.schema == pl.Schema(FLOW_SCHEMA)
    expected = _nfdump_count(path)
    if expected is None:  # 1.7.8 csv and csv-fast carry no trailer: count the data lines
        expected = len(_text(path).strip().splitlines()) - 1
    assert result.flows.height == expected
    assert not result.bad_lines, result.bad_lines[:3]
    assert {s.reason for s in result.skipped} <= BENIGN_REASONS


def _same_address(full: pl.Series, printed: pl.Series) -> pl.Series:
    """Text formats shorten long IPv6 addresses to 'head..tail' to fit their column."""
    head = printed.str.split("..").list.first()
    tail = printed.str.split("..").list.last()
    shortened = printed.str.contains("..", literal=True)
    return (full == printed) | (shortened & full.str.starts_with(head) & full.str.ends_with(tail))


def _scaled_tolerance(value: pl.Series) -> pl.Series:
    # nfdump prints "%.1f M": the true value lies within half a last digit of the unit
    unit = value.map_elements(
        lambda v: float(1000 ** math.floor(math.log(max(v, 1), 1000))), return_dtype=pl.Float64
    )
    return unit * 0.05 + 1


@pytest.mark.parametrize("name", sorted(SETS))
def test_totals_and_flows_agree_across_versions_and_formats(name):
    count, packets, nbytes = SETS[name]
    exact = read_dump(FORMATS / f"{name}.nfdump-1.7.8.json.txt.gz", final=True).flows
    assert (exact.height, exact["packets"].sum(), exact["bytes"].sum()) == (count, packets, nbytes)
    exact = exact.with_row_index("i")
    for path in sorted(FORMATS.glob(f"{name}.*")):
        flows = read_dump(path, final=True).flows.with_row_index("i")
        assert flows.height == count, path.name
        assert flows["packets"].sum() == packets, path.name
        joined = exact.join(flows, on="i", suffix="_x")
        for column in KEY:
            if column.endswith("_addr"):
                same = _same_address(joined[column], joined[f"{column}_x"])
            else:
                same = joined[column] == joined[f"{column}_x"]
            assert same.all(), (path.name, column)
        # timestamps to the printed precision: the 48-column csv prints whole seconds
        precision = "1s" if re.search(r"nfdump-1\.(6\.[0-9]+|7\.1)\.csv", path.name) else "1ms"
        first = joined["ts_first"].dt.truncate(precision)
        assert (first == joined["ts_first_x"].dt.truncate(precision)).all(), path.name
        diff = (joined["bytes"] - joined["bytes_x"]).abs()
        approx = joined["approx_x"]
        assert (diff.filter(~approx) == 0).all(), path.name
        assert (diff.filter(approx) <= _scaled_tolerance(joined["bytes"].filter(approx))).all()
        if "-N" in path.name or "csv" in path.name or "json" in path.name:
            assert not approx.any() and joined["bytes_x"].sum() == nbytes, path.name


def test_scaled_values_are_flagged_approx_and_unscaled_are_exact():
    scaled = read_dump(FORMATS / "small-lzo.nfdump-1.7.1.extended.txt.gz", final=True).flows
    exact = read_dump(FORMATS / "small-lzo.nfdump-1.6.25.csv.txt.gz", final=True).flows
    row = scaled.filter(pl.col("line") == 2).row(0, named=True)
    assert row["bytes"] == 4_500_000 and row["approx"] is True
    assert scaled.filter(pl.col("line") == 3)["approx"].to_list() == [False]
    assert exact["approx"].sum() == 0


def test_durations_agree_between_seconds_and_hms_forms():
    old = read_dump(FORMATS / "small-lzo.nfdump-1.6.25.extended.txt.gz", final=True).flows
    new = read_dump(FORMATS / "small-lzo.nfdump-1.7.1.extended.txt.gz", final=True).flows
    assert old["duration"].to_list() == new["duration"].to_list()
    assert new["duration"].max() == pytest.approx(2155.052)
    # ts_last = ts_first + duration (ms precision)
    row = new.filter(pl.col("duration") > 2000).row(0, named=True)
    assert str(row["ts_last"]) == "2019-08-12 18:51:43.101000"


def test_icmp_type_code_is_folded_like_nfdump_csv():
    csv = read_dump(FORMATS / "icmp-v4v6.nfdump-1.7.1.csv.txt", final=True).flows
    assert csv["dst_port"].to_list()[:5] == [2048, 2048, 2048, 771, 32768]
    for fmt in ("extended", "extended-N", "line", "long", "json"):
        flows = read_dump(FORMATS / f"icmp-v4v6.nfdump-1.7.1.{fmt}.txt", final=True).flows
        assert flows["dst_port"].to_list() == csv["dst_port"].to_list(), fmt
        assert flows["proto"].to_list() == ["ICMP"] * 4 + ["ICMP6", "UDP"], fmt


def test_shortened_ipv6_keeps_address_as_printed_and_port_after_dot():
    flows = read_dump(FORMATS / "icmp-v4v6.nfdump-1.7.1.extended.txt", final=True).flows
    last = flows.row(-1, named=True)
    assert (last["dst_addr"], last["dst_port"]) == ("2001:db..34:5678", 53)
    assert (last["src_addr"], last["src_port"]) == ("2001:db8::1", 5353)
