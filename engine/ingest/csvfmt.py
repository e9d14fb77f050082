"""nfdump's csv formats: the 48-column csv of 1.6/1.7.0-1.7.5 (with its `Summary` block),
the 10-column csv of 1.7.6+, and 1.7.6+ `csv-fast` (epoch milliseconds)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import polars as pl

from engine.ingest.assemble import finish, parse_ts
from engine.ingest.timezones import epoch_ms_to_wall
from engine.ingest.values import ICMP_PROTOS, MAX_DURATION_S, icmp_port, proto_name, tcp_flags
from engine.schema import empty_flows


@dataclass(frozen=True)
class CsvLayout:
    name: str
    header: str  # regex matching the header line
    record: str  # regex matching a data line, to recognise a headerless dump
    columns: dict[int, tuple[str, pl.DataType]]  # source column index -> (field, dtype)

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
        5: ("sp", pl.String),
        6: ("dp", pl.String),
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
        4: ("sp", pl.String),
        5: ("da", pl.String),
        6: ("dp", pl.String),
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
        6: ("sp", pl.String),
        7: ("da", pl.String),
        8: ("dp", pl.String),
        13: ("flg", pl.String),
        14: ("stos", pl.Int16),
        15: ("ipkt", pl.Int64),
        16: ("ibyt", pl.Int64),
    },
)
LAYOUTS = {layout.name: layout for layout in (CSV48, CSV176, CSVFAST)}
# The 48-column csv ends with "Summary", a header and one line of totals.
TRAILER_MARKERS = (b"\nSummary\n", b"\nSummary\r\n", b"\nNo matching flows")


def _ports(series: pl.Series, icmp: pl.Series) -> pl.Series:
    plain = series.cast(pl.Int32, strict=False)
    if plain.null_count() == series.null_count() or not icmp.any():
        return plain
    return plain.fill_null(icmp_port(series.cast(pl.String)))


def build(layout: CsvLayout, raw: pl.DataFrame, *, file: str, timezone: str):
    """raw: one column per field of `layout` (String or already typed) plus line numbers `n`."""
    height = raw.height
    if height == 0:
        return empty_flows(), pl.Series([], dtype=pl.Boolean)
    col = {field: raw[field].cast(dtype, strict=False) for field, dtype in layout.columns.values()}
    proto = proto_name(col["pr"])
    icmp = proto.is_in(ICMP_PROTOS)
    if layout is CSVFAST:
        ts_first = epoch_ms_to_wall(col["first_ms"], timezone)
        ts_last = epoch_ms_to_wall(col["last_ms"], timezone)
        duration = (col["last_ms"] - col["first_ms"]).cast(pl.Float64) / 1000.0
    elif layout is CSV48:
        ts_first = parse_ts(col["ts"])
        ts_last = parse_ts(col["te"])
        duration = col["td"]
    else:
        ts_first = parse_ts(col["ts"])
        duration = col["td"]
        ok = duration.is_between(0, MAX_DURATION_S)
        ts_last = (
            pl.DataFrame({"f": ts_first, "d": duration, "ok": ok})
            .select(
                pl.when(pl.col("ok"))
                .then(pl.col("f") + pl.duration(milliseconds=(pl.col("d") * 1000).round(0)))
                .otherwise(pl.col("f"))
            )
            .to_series()
        )
    none_str = pl.Series([None] * height, dtype=pl.String)
    frame = pl.DataFrame(
        {
            "ts_first": ts_first,
            "ts_last": ts_last,
            "duration": duration,
            "proto": proto,
            "src_addr": col["sa"].str.strip_chars(),
            "src_port": _ports(col["sp"], pl.Series([False] * height)),
            "dst_addr": col["da"].str.strip_chars(),
            "dst_port": _ports(col["dp"], icmp),
            "tcp_flags": tcp_flags(col["flg"]) if "flg" in col else none_str,
            "tos": col["stos"] if "stos" in col else pl.Series([None] * height, dtype=pl.Int16),
            "packets": col["ipkt"],
            "bytes": col["ibyt"],
            "flows": col["fl"] if "fl" in col else pl.Series([1] * height, dtype=pl.Int32),
            "approx": pl.Series([False] * height),
            "line": raw["n"],
        }
    )
    return finish(frame, file)


def parse_csv_lines(layout: CsvLayout, lines: pl.DataFrame, *, file: str, timezone: str):
    """Exact path: lines (n, text) split with whole-column string ops; bad rows returned."""
    parts = lines.select("n", p=pl.col("text").str.splitn(",", layout.width + 1)).unnest("p")
    raw = parts.select(
        "n", *[pl.col(f"field_{i}").alias(field) for i, (field, _) in layout.columns.items()]
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
    expected = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    try:
        raw = pl.read_csv(
            io.BytesIO(body),
            has_header=False,
            columns=list(layout.columns),
            new_columns=[field for field, _ in layout.columns.values()],
            schema_overrides={field: dtype for field, dtype in layout.columns.values()},
            quote_char=None,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
            infer_schema=False,
        )
    except Exception:
        return None
    if raw.height != expected:
        return None
    raw = raw.with_columns(n=pl.int_range(first_line, first_line + raw.height, dtype=pl.Int64))
    flows, valid = build(layout, raw, file=file, timezone=timezone)
    if not bool(valid.all()):
        return None
    return flows
