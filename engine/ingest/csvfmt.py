"""nfdump's csv formats: the 48-column csv of 1.6/1.7.0-1.7.5 (with its `Summary` block),
the 10-column csv of 1.7.6+, and 1.7.6+ `csv-fast` (epoch milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from polars._typing import PolarsDataType

from engine.ingest import exprs
from engine.ingest.timezones import epoch_ms_to_wall


@dataclass(frozen=True)
class CsvLayout:
    name: str
    header: str  # regex matching the header line
    record: str  # regex matching a data line, to recognise a headerless dump
    columns: dict[int, tuple[str, PolarsDataType]]  # source column index -> (field, dtype)

    @property
    def width(self) -> int:
        return max(self.columns) + 1


CSV48 = CsvLayout(
    "csv",
    r"^ts,te,td,sa,da,sp,dp,pr,flg",
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8},[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8},",
    {
        0: ("ts", pl.String),
        1: ("te", pl.String),
        2: ("td", pl.Float64),
        3: ("sa", pl.String),
        4: ("da", pl.String),
        5: ("sp", pl.Int32),
        6: ("dp", pl.Int32),
        7: ("pr", pl.String),
        8: ("flg", pl.String),
        10: ("stos", pl.Int16),
        11: ("ipkt", pl.Int64),
        12: ("ibyt", pl.Int64),
    },
)
CSV176 = CsvLayout(
    "csv-1.7.6",
    r"^firstSeen,duration,proto,srcAddr",
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}(?:\.[0-9]+)?,-?[0-9.]+,[0-9]+,",
    {
        0: ("ts", pl.String),
        1: ("td", pl.Float64),
        2: ("pr", pl.String),
        3: ("sa", pl.String),
        4: ("sp", pl.Int32),
        5: ("da", pl.String),
        6: ("dp", pl.Int32),
        7: ("ipkt", pl.Int64),
        8: ("ibyt", pl.Int64),
        9: ("fl", pl.Int32),
    },
)
CSVFAST = CsvLayout(
    "csv-fast",
    r"^cnt,af,firstSeen,lastSeen",
    r"^[0-9]+,[0-9]+,[0-9]{9,},[0-9]{9,},[0-9]+,",
    {
        2: ("first_ms", pl.Int64),
        3: ("last_ms", pl.Int64),
        4: ("pr", pl.String),
        5: ("sa", pl.String),
        6: ("sp", pl.Int32),
        7: ("da", pl.String),
        8: ("dp", pl.Int32),
        13: ("flg", pl.String),
        14: ("stos", pl.Int16),
        15: ("ipkt", pl.Int64),
        16: ("ibyt", pl.Int64),
    },
)
LAYOUTS = {layout.name: layout for layout in (CSV48, CSV176, CSVFAST)}
# The 48-column csv ends with "Summary", a header and one line of totals.
TRAILER_MARKERS = (b"\nSummary\n", b"\nSummary\r\n", b"\nNo matching flows")


def _timestamps(text: pl.Series) -> pl.Series:
    # the 48-column csv prints whole seconds, which repeat: parse each distinct one once
    text = text.cast(pl.String)
    if bool((text.str.len_bytes() == 19).all()):
        return exprs.by_unique(text, exprs.ts)
    return exprs.ts_series(text)


def build(layout: CsvLayout, raw: pl.DataFrame, *, file: str, timezone: str):
    """raw: one column per field of `layout` (String or already typed) plus line numbers `n`."""
    c = {field: pl.col(field).cast(dtype, strict=False) for field, dtype in layout.columns.values()}
    dp_text = raw.schema["dp"] == pl.String and bool(
        raw["dp"].str.contains(".", literal=True).any()
    )
    # protocols and flags take few values: map each distinct one (often the identity); nfdump
    # pads an unnamed protocol number to five characters ('139  ')
    raw = raw.with_columns(
        pr=exprs.small_domain(raw["pr"].cast(pl.String), lambda c: exprs.proto(c.str.strip_chars()))
    )
    if "flg" in c:
        raw = raw.with_columns(flg=exprs.small_domain(raw["flg"], exprs.tcp_flags))
    columns = {
        "proto": pl.col("pr"),
        "src_addr": pl.col("sa"),
        "src_port": exprs.port(pl.col("sp"), type_code=False),
        "dst_addr": pl.col("da"),
        "dst_port": exprs.port(pl.col("dp"), type_code=dp_text),
        "packets": c["ipkt"],
        "bytes": c["ibyt"],
        "line": pl.col("n"),
    }
    if "flg" in c:
        columns["tcp_flags"] = pl.col("flg")
    if "stos" in c:
        columns["tos"] = c["stos"]
    if "fl" in c:
        columns["flows"] = c["fl"]
    if layout is CSVFAST:
        columns["ts_first"] = epoch_ms_to_wall(c["first_ms"], timezone)
        columns["ts_last"] = epoch_ms_to_wall(c["last_ms"], timezone)
        columns["duration"] = (c["last_ms"] - c["first_ms"]).cast(pl.Float64) / 1000.0
    else:
        # timestamps repeat (csv prints whole seconds): parse each distinct one once
        raw = raw.with_columns(ts_v=_timestamps(raw["ts"]))
        columns["ts_first"] = pl.col("ts_v")
        columns["duration"] = c["td"]
        if layout is CSV48:
            raw = raw.with_columns(te_v=_timestamps(raw["te"]))
            columns["ts_last"] = pl.col("te_v")
    return exprs.build(raw, columns, file=file)


def parse_csv_lines(layout: CsvLayout, lines: pl.DataFrame, *, file: str, timezone: str):
    """Exact path: lines (n, text) split with whole-column string ops; bad rows returned."""
    parts = lines.select("n", p=pl.col("text").str.splitn(",", layout.width + 1)).unnest("p")
    raw = parts.select(
        "n",
        *[
            pl.col(f"field_{i}").str.strip_chars().alias(field)
            for i, (field, _) in layout.columns.items()
        ],
    )
    flows, valid = build(layout, raw, file=file, timezone=timezone)
    return flows, lines.filter(~valid)


def parse_csv_body(layout: CsvLayout, body: bytes, first_line: int, *, file: str, timezone: str):
    """Fast path over the data lines only (no header, no trailer, no blank lines).

    Returns None when the body does not read cleanly as one row per line; the caller then
    takes the exact line path, which accounts for every bad line.
    """
    if not body:
        return None
    first = body[: body.find(b"\n")] if b"\n" in body else body
    width = first.count(b",") + 1
    if width < layout.width:
        return None
    names = [f"_{i}" for i in range(width)]
    for index, (field, _) in layout.columns.items():
        names[index] = field
    schema: dict[str, PolarsDataType] = {name: pl.String for name in names}
    schema.update({field: dtype for field, dtype in layout.columns.values()})
    try:
        raw = pl.read_csv(
            body,
            has_header=False,
            schema=schema,
            columns=list(layout.columns),
            quote_char=None,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        )
    except Exception:
        return None
    # With quoting off, polars yields one row per line, blank lines included (as nulls, which
    # fail validation): row i is line first_line + i.
    raw = raw.with_columns(n=pl.int_range(first_line, first_line + raw.height, dtype=pl.Int64))
    flows, valid = build(layout, raw, file=file, timezone=timezone)
    if not bool(valid.all()):
        return None
    return flows, raw.height
