"""Which columns a table shows, how each cell is drawn, and how they share the width.

A Column draws one cell from a row dict (one row of the polars view, turned into Python only
when visible). `layout` decides widths: fixed columns keep theirs, flexible ones (addresses,
reasons) shrink toward a minimum, and when even that does not fit the lowest-priority columns
are dropped, so 80 columns show the essentials and wider terminals show everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from engine.core.sanitize import sanitize
from tui import format as fmt

Cell = tuple[str, str | None]  # text, component-class suffix for its style (None = plain)


@dataclass(frozen=True)
class Column:
    key: str  # stable name: sort keys, keymap ids and help refer to it
    header: str
    sort_by: str  # the frame column a sort on this column orders by
    draw: Callable[[dict, int], Cell]  # (row, cell width) -> cell
    width: int  # natural width in cells (flexible columns: the cap of the measured width)
    min_width: int | None = None  # flexible columns shrink down to this
    priority: int = 5  # lower priorities are dropped first when the width is short
    align: str = "left"
    middle: bool = False  # cut in the middle (endpoints keep their port)
    address: bool = False  # sorts as IP addresses (10.0.0.9 before 10.0.0.10), not as text
    measure: pl.Expr | None = None  # content width over the view, for flexible columns

    @property
    def flexible(self) -> bool:
        return self.min_width is not None


def layout(columns: Sequence[Column], available: int, measured: dict[str, int] | None = None) -> list[tuple[Column, int]]:
    """Columns that fit in `available` cells with their widths (one space between columns)."""
    measured = measured or {}

    def natural(col: Column) -> int:
        if col.flexible and col.key in measured:
            return max(len(col.header), min(col.width, measured[col.key]))
        return col.width

    shown = list(columns)
    while shown:
        widths = {c.key: natural(c) for c in shown}
        deficit = sum(widths.values()) + len(shown) - 1 - available
        for col in sorted((c for c in shown if c.flexible), key=lambda c: c.priority):
            if deficit <= 0:
                break
            cut = min(deficit, widths[col.key] - min(widths[col.key], col.min_width or 0))
            widths[col.key] -= cut
            deficit -= cut
        if deficit <= 0:
            # Spare width goes to the last flexible column (the reason), so rows fill the line.
            flexible = [c for c in shown if c.flexible]
            if flexible:
                widths[flexible[-1].key] += -deficit
            return [(c, widths[c.key]) for c in shown]
        if len(shown) == 1:
            return [(shown[0], max(1, available))]
        drop = min(shown, key=lambda c: (c.priority, -shown.index(c)))
        shown.remove(drop)
    return []


# ---- flows -------------------------------------------------------------------------------

HOT = "hot"  # style suffix for cells of flagged flows


def _score(row: dict, width: int) -> Cell:
    return fmt.score_cell(row.get("score")), HOT if row.get("_hot") else "bar"


def _verdict(row: dict, width: int) -> Cell:
    verdict = sanitize(row.get("verdict"))
    return verdict, (HOT if row.get("_hot") else ("dim" if verdict == "normal" else None))


def _endpoint_width(addr: str, port: str) -> pl.Expr:
    return (pl.col(addr).str.len_chars() + pl.col(port).cast(pl.String).str.len_chars().fill_null(0) + 1).max()


FLOW_COLUMNS: tuple[Column, ...] = (
    Column("time", "time", "ts_first", lambda r, w: (fmt.clock(r.get("ts_first")), "dim"), 8, priority=8),
    Column("score", "score", "score", _score, 5, priority=10),
    Column("verdict", "verdict", "verdict", _verdict, 13, min_width=8, priority=9,
           measure=pl.col("verdict").str.len_chars().max()),
    Column("proto", "prot", "proto", lambda r, w: (sanitize(r.get("proto")), None), 4, priority=7),
    Column("src", "source", "src_addr", lambda r, w: (fmt.endpoint(r.get("src_addr"), r.get("src_port"), r.get("proto")), None),
           46, min_width=21, priority=9, middle=True, measure=_endpoint_width("src_addr", "src_port"),
           address=True),
    Column("dst", "destination", "dst_addr", lambda r, w: (fmt.endpoint(r.get("dst_addr"), r.get("dst_port"), r.get("proto")), None),
           46, min_width=21, priority=9, middle=True, measure=_endpoint_width("dst_addr", "dst_port"),
           address=True),
    Column("packets", " pkts", "packets", lambda r, w: (fmt.compact(r.get("packets")), None), 5, priority=6, align="right"),
    Column("bytes", "bytes", "bytes", lambda r, w: (fmt.compact(r.get("bytes")), None), 5, priority=8, align="right"),
    Column("duration", " dur", "duration", lambda r, w: (fmt.duration(r.get("duration")), "dim"), 4, priority=3, align="right"),
    Column("reason", "reason", "reasons", lambda r, w: (sanitize(r.get("reasons")), "dim"), 80, min_width=10, priority=4,
           measure=pl.col("reasons").str.len_chars().max()),
)

# ---- sources (engine.detect.sources.SOURCE_SCHEMA) ----------------------------------------------


def _source_verdict(row: dict, width: int) -> Cell:
    verdict = sanitize(row.get("top_verdict"))
    return verdict, ("dim" if verdict in ("normal", "") else HOT)


SOURCE_COLUMNS: tuple[Column, ...] = (
    Column("address", "address", "src_addr", lambda r, w: (sanitize(r.get("src_addr")), None), 40, min_width=15,
           priority=10, middle=True, measure=pl.col("src_addr").str.len_chars().max(), address=True),
    Column("flows", "flows", "flows", lambda r, w: (fmt.compact(r.get("flows")), None), 5, priority=9, align="right"),
    Column("dns", "dns", "dns_flows", lambda r, w: (fmt.compact(r.get("dns_flows")), None), 5, priority=6,
           align="right"),
    Column("bytes", "bytes", "bytes", lambda r, w: (fmt.compact(r.get("bytes")), None), 5, priority=7, align="right"),
    Column("peers", "peers", "peers", lambda r, w: (fmt.compact(r.get("peers")), None), 5, priority=7, align="right"),
    Column("ports", "ports", "dst_ports", lambda r, w: (fmt.compact(r.get("dst_ports")), None), 5, priority=6, align="right"),
    Column("suspicious", "susp", "suspicious_share", lambda r, w: (fmt.percent(r.get("suspicious_share")), None), 4,
           priority=8, align="right"),
    Column("verdict", "top verdict", "top_verdict", _source_verdict, 13, min_width=8, priority=8,
           measure=pl.col("top_verdict").str.len_chars().max()),
    Column("score", "max", "max_score", lambda r, w: (fmt.score_cell(r.get("max_score")), "bar"), 5, priority=9),
    Column("first", "first", "first_seen", lambda r, w: (fmt.clock(r.get("first_seen")), "dim"), 8, priority=3),
    Column("last", "last", "last_seen", lambda r, w: (fmt.clock(r.get("last_seen")), "dim"), 8, priority=5),
    Column("activity", "activity", "flows", lambda r, w: (fmt.sparkline(r.get("activity"), w), "bar"), 24,
           min_width=8, priority=4),
)

# ---- incidents (engine.detect.incidents.INCIDENT_SCHEMA) ---------------------------------


def _incident_state(row: dict, width: int) -> Cell:
    return ("\u25cf", HOT) if row.get("state") == "open" else ("\u00b7", "dim")


INCIDENT_COLUMNS: tuple[Column, ...] = (
    # rank: open first, then the highest score, then the latest (engine.detect.incidents)
    Column("rank", "!", "rank", _incident_state, 1, priority=10),
    Column("last", "last", "last_seen", lambda r, w: (fmt.clock(r.get("last_seen")), "dim"), 8, priority=8),
    Column("class", "class", "class", lambda r, w: (sanitize(r.get("class")), HOT), 13, priority=10),
    Column("who", "who", "anchor", lambda r, w: (sanitize(r.get("summary")), None), 60, min_width=26,
           priority=10, measure=pl.col("summary").str.len_chars().max(), address=True),
    Column("flows", "flows", "flows", lambda r, w: (fmt.compact(r.get("flows")), None), 5, priority=9, align="right"),
    Column("bytes", "bytes", "bytes", lambda r, w: (fmt.compact(r.get("bytes")), None), 5, priority=7, align="right"),
    Column("score", "max", "max_score", lambda r, w: (fmt.score_cell(r.get("max_score")), "bar"), 5, priority=6),
    Column("first", "first", "first_seen", lambda r, w: (fmt.clock(r.get("first_seen")), "dim"), 8, priority=3),
    Column("peers", "peers", "peers", lambda r, w: (fmt.compact(r.get("peers")), None), 5, priority=2, align="right"),
    Column("activity", "activity", "flows", lambda r, w: (fmt.sparkline(r.get("activity"), w), "bar"), 30,
           min_width=8, priority=5),
)
