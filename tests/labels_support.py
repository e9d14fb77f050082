"""Helpers of the label/feedback tests: real fixture dumps as canonical flows, and features."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from engine.schema import FLOW_SCHEMA, conform

_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\s+(?P<dur>[\d:.]+)\s+(?P<proto>\S+)\s+"
    r"(?P<src>\S+):(?P<sp>\d+)\s+->\s+(?P<dst>\S+):(?P<dp>\d+)\s+(?P<flags>\S+)\s+(?P<tos>\d+)\s+"
    r"(?P<pkts>[\d.]+(?: [KMG])?)\s+(?P<bytes>[\d.]+(?: [KMG])?)\s+\S+(?: [KMG])?\s+"
    r"\S+(?: [KMG])?\s+\d+\s+(?P<flows>\d+)\s*$"
)
_SCALE = {"K": 1e3, "M": 1e6, "G": 1e9}


def _number(text: str) -> tuple[int, bool]:
    if " " in text:
        value, unit = text.split()
        return int(float(value) * _SCALE[unit]), True
    return int(text), False


def _seconds(text: str) -> float:
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def read_fixture(path: Path) -> pl.DataFrame:
    """Canonical flows of an `-o extended` fixture dump: engine.ingest when it is there,
    else a minimal reader of exactly the fixture's lines (router-shaped, IPv4)."""
    try:
        from engine.ingest import read_dump
    except ImportError:
        pass
    else:
        return read_dump(path, final=True, timezone="UTC").flows
    rows = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        m = _LINE.match(text)
        if not m:
            continue
        packets, approx_p = _number(m["pkts"])
        nbytes, approx_b = _number(m["bytes"])
        rows.append({
            "ts_first": m["ts"], "duration": _seconds(m["dur"]), "proto": m["proto"],
            "src_addr": m["src"], "src_port": int(m["sp"]), "dst_addr": m["dst"],
            "dst_port": int(m["dp"]), "tcp_flags": m["flags"], "tos": int(m["tos"]),
            "packets": packets, "bytes": nbytes, "flows": int(m["flows"]),
            "approx": approx_p or approx_b, "file": str(path), "line": number,
        })
    frame = pl.DataFrame(rows).with_columns(
        pl.col("ts_first").str.to_datetime("%Y-%m-%d %H:%M:%S%.3f", time_unit="ms")
    )
    frame = frame.with_columns(
        (pl.col("ts_first") + pl.duration(milliseconds=(pl.col("duration") * 1000).round(0)))
        .alias("ts_last")
    )
    return conform(frame, FLOW_SCHEMA)

