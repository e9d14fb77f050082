"""A sorted, filtered view of a polars frame that is cheap to build and to read a page from.

The view never copies the frame: it is the frame plus an `order` (row indices after filter and
sort), so a sort of a million flows sorts one key column and an index, and drawing a page
gathers only the visible rows. Built in a worker thread; read on the UI thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from tui.columns import Column

ROW = "_row"


@dataclass(frozen=True)
class SortKey:
    column: str  # Column.key
    descending: bool = True

    def reversed(self) -> SortKey:
        return SortKey(self.column, not self.descending)


@dataclass(frozen=True)
class TableView:
    frame: pl.DataFrame
    order: pl.Series  # UInt32 row indices into frame, in display order
    id_column: str  # stable identity of a row (flow_id, address)
    measured: dict[str, int] = field(default_factory=dict)  # content widths of flexible columns
    threshold: float | None = None  # rows scoring at or above it are drawn as flagged
    version: int = 0  # snapshot version the view was built from

    def __len__(self) -> int:
        return self.order.len()

    def rows(self, start: int, stop: int) -> list[dict]:
        """Rows [start, stop) of the view as dicts (only these become Python objects)."""
        start, stop = max(0, start), min(len(self), stop)
        if start >= stop:
            return []
        page = self.frame[self.order.slice(start, stop - start)]
        if self.threshold is not None and "score" in page.columns:
            page = page.with_columns(_hot=pl.col("score") >= self.threshold)
        return page.rows(named=True)

    def key_at(self, index: int) -> object | None:
        if not 0 <= index < len(self):
            return None
        return self.frame.get_column(self.id_column)[int(self.order[index])]

    def index_of(self, key: object) -> int | None:
        """Display position of the row whose id is `key`, or None if it is not in the view."""
        if key is None or len(self) == 0:
            return None
        row = self.frame.get_column(self.id_column).index_of(key)
        if row is None:
            return None
        return self.order.index_of(row)


def ipv4_key(column: str) -> pl.Expr:
    """A dotted IPv4 address as its 32-bit value (null for anything else: IPv6 sorts after)."""
    octets = pl.col(column).str.splitn(".", 4)  # a struct: twice as fast as a list split
    value = pl.lit(0, pl.Int64)
    for i in range(4):
        octet = octets.struct.field(f"field_{i}").cast(pl.Int64, strict=False)
        value = value * 256 + pl.when(octet.is_between(0, 255)).then(octet)
    return value


def empty_view(id_column: str) -> TableView:
    return TableView(pl.DataFrame({id_column: []}), pl.Series(ROW, [], dtype=pl.UInt32), id_column)


def build_view(
    frame: pl.DataFrame,
    columns: Sequence[Column],
    sort: SortKey,
    *,
    id_column: str,
    predicate: pl.Expr | None = None,
    threshold: float | None = None,
    version: int = 0,
) -> TableView:
    """Filter `frame` by `predicate`, order it by `sort` (ties broken by the id, so the order
    is total and stable across updates), and measure the flexible columns over the result."""
    by = {c.key: c for c in columns}[sort.column].sort_by
    lazy = frame.lazy().with_row_index(ROW)
    if predicate is not None:
        lazy = lazy.filter(predicate)
    column = {c.key: c for c in columns}[sort.column]
    if column.address and frame.schema[by] == pl.String:
        # IPv4 by value, then IPv6 (and anything else) as text after them; the id breaks ties
        ordered = lazy.sort([ipv4_key(by), by, id_column], descending=sort.descending, nulls_last=True)
    elif by == id_column or frame.schema[by].is_numeric() or frame.schema[by].is_temporal():
        # A stable sort on one key is the fastest total order for numbers (ties keep the
        # frame's order, which the pipeline keeps stable).
        ordered = lazy.sort(by, descending=sort.descending, nulls_last=True, maintain_order=True)
    else:  # a stable string sort is slow in polars; the id breaks ties instead
        ordered = lazy.sort([by, id_column], descending=sort.descending, nulls_last=True)
    measures = [c.measure.alias(c.key) for c in columns if c.measure is not None]
    # One pass computes the order and the column widths over the rows that survived the filter.
    order = ordered.select(ROW).collect().to_series()
    measured: dict[str, int] = {}
    if measures and order.len():
        widths = frame[order.head(50_000)].select(measures).row(0, named=True)
        measured = {k: int(v) for k, v in widths.items() if v is not None}
    return TableView(frame, order, id_column, measured, threshold, version)
