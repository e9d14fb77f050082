"""Dirty real dumps: no crash, every line either a flow or a counted skipped line."""

from __future__ import annotations

import gzip
from collections import Counter

import polars as pl

from engine.ingest import read_dump
from engine.ingest.model import NOT_A_FLOW, RAW_RECORD
from tests.conftest import FIXTURES

REAL = FIXTURES / "real"


def _line_count(path) -> int:
    return gzip.decompress(path.read_bytes()).count(b"\n")


def test_out1_mixed_blocks_every_line_accounted_for():
    path = REAL / "out1.gz"
    result = read_dump(path, final=True)
    lines = set(result.flows["line"].to_list())
    skipped = {s.line for s in result.skipped}
    assert not lines & skipped
    assert lines | skipped == set(range(1, _line_count(path) + 1))
    # 339 flow lines in line/long/extended/biline/bilong layouts, then raw records
    assert result.flows.height == 339
    reasons = Counter(s.reason for s in result.skipped)
    # 54 `-o raw` blocks (Flow Record: ... payload dump) separated by blank lines; ten lines
    # of the payloads are printed as HTTP text, which no rule can call a raw record
    assert reasons[RAW_RECORD] > 5000 and reasons[NOT_A_FLOW] == 10
    assert set(reasons) == {RAW_RECORD, NOT_A_FLOW, "blank"}
    assert result.skipped[0].file == str(path)
    icmp = result.flows.filter(pl.col("proto") == "ICMP", pl.col("dst_addr") == "157.143.34.100")
    assert 2048 in icmp["dst_port"].to_list()  # "157.143.34.100:8.0", echo request


def test_nfcapd_sample_all_formats_agree():
    frames = {}
    for fmt in ("extended", "extended-N", "line", "long", "csv", "json"):
        path = REAL / f"nfcapd.sample.nfdump-1.7.1.{fmt}.txt.gz"
        result = read_dump(path, final=True)
        assert result.flows.height == 3018, fmt
        assert not result.bad_lines, fmt
        frames[fmt] = result.flows
    exact = frames["csv"]
    assert exact["bytes"].sum() == 27576229 and exact["packets"].sum() == 43558
    for fmt, flows in frames.items():
        assert flows["packets"].sum() == 43558, fmt
        assert (flows["duration"] >= 0).all() and (flows["ts_last"] >= flows["ts_first"]).all()
        assert flows["proto"].to_list() == exact["proto"].to_list(), fmt
        assert flows["dst_port"].to_list() == exact["dst_port"].to_list(), fmt
    # 668 records end before they start: kept, clamped to zero duration
    assert frames["extended"].filter(pl.col("duration") == 0).height >= 668
