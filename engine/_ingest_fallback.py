"""TEMPORARY stand-in for engine.ingest until the ingest helper's work lands on main.

It follows the planned interface (Cursor, SkippedLine, ReadResult, parse_bytes) closely enough
for the live tailer and its tests, and reads only nfdump `-o extended` IPv4 lines. When
`engine.ingest` exists, engine.tail imports it instead and this module should be deleted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import polars as pl

from engine.schema import FLOW_SCHEMA, empty_flows


@dataclass(frozen=True)
class Cursor:
    offset: int = 0
    line: int = 0
    format: str | None = None
    layout: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class SkippedLine:
    file: str
    line: int
    reason: str
    text: str


@dataclass(frozen=True)
class ReadResult:
    flows: pl.DataFrame
    cursor: Cursor
    format: str | None
    skipped: tuple[SkippedLine, ...]


_EXTENDED = (
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\s+(\S+)\s+(\S+)\s+"
    r"([\d.]+):(\d+)\s+->\s+([\d.]+):(\d+)\s+(\S+)\s+(\d+)\s+"
    r"([\d.]+(?: [KMG])?)\s+([\d.]+(?: [KMG])?)\s+\S+(?: [KMG])?\s+\S+(?: [KMG])?\s+\S+\s+(\d+)\s*$"
)
_NOT_FLOWS = ("Date first seen", "Summary:", "Time window:", "Total flows processed:", "Sys:")


def _scaled(col: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    number = col.str.extract(r"^([\d.]+)").cast(pl.Float64)
    unit = col.str.extract(r" ([KMG])$")
    factor = (
        pl.when(unit == "K").then(1e3).when(unit == "M").then(1e6).when(unit == "G").then(1e9).otherwise(1.0)
    )
    return (number * factor).round(0).cast(pl.Int64), unit.is_not_null()


def parse_bytes(
    data: bytes, *, file: str, cursor: Cursor | None = None, final: bool = False, timezone: str = "local"
) -> ReadResult:
    """Parse `data`, the text that follows `cursor` in `file`; an unterminated tail is held back."""
    cursor = cursor or Cursor()
    end = len(data) if final else data.rfind(b"\n") + 1
    text = data[:end].decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return ReadResult(empty_flows(), Cursor(cursor.offset + end, cursor.line, cursor.format), cursor.format, ())
    frame = pl.DataFrame({"text": lines}).with_row_index("n").with_columns(
        line=(pl.col("n").cast(pl.Int64) + cursor.line + 1), text=pl.col("text").str.strip_chars_end("\r")
    )
    parts = frame.with_columns(m=pl.col("text").str.extract_groups(_EXTENDED))
    ok = parts.filter(pl.col("m").struct.field("1").is_not_null())
    bad = parts.filter(
        pl.col("m").struct.field("1").is_null()
        & (pl.col("text").str.strip_chars() != "")
        & ~pl.any_horizontal([pl.col("text").str.starts_with(p) for p in _NOT_FLOWS])
    )
    m = pl.col("m").struct.field
    packets, p_approx = _scaled(m("10"))
    nbytes, b_approx = _scaled(m("11"))
    dur = m("2").str.split(":")
    duration = (
        dur.list.get(0, null_on_oob=True).cast(pl.Float64) * 3600
        + dur.list.get(1, null_on_oob=True).cast(pl.Float64) * 60
        + dur.list.get(2, null_on_oob=True).cast(pl.Float64)
    )
    ts_first = m("1").str.to_datetime("%Y-%m-%d %H:%M:%S%.3f", time_unit="ms")
    flows = ok.select(
        ts_first=ts_first,
        ts_last=ts_first + pl.duration(milliseconds=(duration * 1000).round(0).cast(pl.Int64)),
        duration=duration,
        proto=m("3"),
        src_addr=m("4"),
        src_port=m("5").cast(pl.Int32),
        dst_addr=m("6"),
        dst_port=m("7").cast(pl.Int32),
        tcp_flags=m("8"),
        tos=m("9").cast(pl.Int16),
        packets=packets,
        bytes=nbytes,
        flows=m("12").cast(pl.Int32),
        approx=p_approx | b_approx,
        file=pl.lit(file),
        line=pl.col("line"),
    ).cast(FLOW_SCHEMA)
    skipped = tuple(
        SkippedLine(file, n, "not an nfdump extended flow line", t)
        for n, t in bad.select("line", "text").iter_rows()
    )
    new = Cursor(cursor.offset + end, cursor.line + len(lines), "extended")
    return ReadResult(flows, new, "extended", skipped)
