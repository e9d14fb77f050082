"""Whole-column conversions of nfdump's printed values into canonical types.

Everything here takes and returns polars expressions or Series; no per-row Python.
Expensive parses run once per distinct value (`by_unique`): durations, flags, protocol
names and scaled numbers repeat heavily in real dumps.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from engine.schema import PROTO_NAMES, TCP_FLAG_LETTERS

# nfdump scales by powers of 1000 (format_number: K, M, G, T).
_UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
# A duration longer than this, or negative, comes from an exporter clock bug (records that end
# before they start print as -2147483648d ... or 18446744073709540.000): we keep the flow and
# clamp it to duration 0 with ts_last = ts_first, in every format alike.
MAX_DURATION_S = 366 * 86400.0
ICMP_PROTOS = ("ICMP", "ICMP6")


def by_unique(series: pl.Series, parse: Callable[[pl.Series], pl.Series], dtype) -> pl.Series:
    """Apply an expensive vectorised parse to the distinct values only, then map back."""
    uniq = series.unique()
    if uniq.len() * 4 > series.len():
        return parse(series).cast(dtype)
    parsed = parse(uniq).cast(dtype)
    return series.replace_strict(uniq, parsed, return_dtype=dtype)


def scaled(series: pl.Series) -> tuple[pl.Series, pl.Series]:
    """'4.5 M', '1.4M', '349.3 G', '3000' -> (Int64 value, Boolean lost-precision)."""

    def parse(s: pl.Series) -> pl.Series:
        frame = s.to_frame("v").select(
            g=pl.col("v")
            .str.strip_chars()
            .str.extract_groups(r"^([0-9]+(?:\.[0-9]+)?) ?([KMGT]?)$")
        )
        num = frame["g"].struct.field("1").cast(pl.Float64, strict=False)
        unit = frame["g"].struct.field("2")
        mult = unit.replace_strict(
            ["", "K", "M", "G", "T"], [1.0, *_UNITS.values()], default=None, return_dtype=pl.Float64
        )
        value = (num * mult).round(0).cast(pl.Int64)
        approx = (unit != "") & value.is_not_null()
        return pl.DataFrame({"v": value, "a": approx}).to_struct("p")

    plain = series.cast(pl.Int64, strict=False)
    if plain.null_count() == series.null_count():
        return plain, pl.Series(values=[False] * series.len(), dtype=pl.Boolean)
    parsed = by_unique(series, parse, pl.Struct({"v": pl.Int64, "a": pl.Boolean}))
    return parsed.struct.field("v"), parsed.struct.field("a").fill_null(False)


def duration_seconds(series: pl.Series) -> pl.Series:
    """'7.040' (1.6), '00:35:55.052' and '5d 09:08:01.812' (1.7) -> Float64 seconds."""

    def parse(s: pl.Series) -> pl.Series:
        g = s.str.strip_chars().str.extract_groups(
            r"^(?:(-?[0-9]+)d +)?(?:(-?[0-9]+):(-?[0-9]+):)?(-?[0-9]+(?:\.[0-9]+)?)$"
        )
        days = g.struct.field("1").cast(pl.Float64, strict=False).fill_null(0.0)
        hours = g.struct.field("2").cast(pl.Float64, strict=False).fill_null(0.0)
        minutes = g.struct.field("3").cast(pl.Float64, strict=False).fill_null(0.0)
        seconds = g.struct.field("4").cast(pl.Float64, strict=False)
        # round to the printed millisecond so "235.169" and "00:03:55.169" are the same float
        return (days * 86400.0 + hours * 3600.0 + minutes * 60.0 + seconds).round(3)

    return by_unique(series, parse, pl.Float64)


_FLAG_TABLE = [
    "".join(ch if value & (0x80 >> i) else "." for i, ch in enumerate(TCP_FLAG_LETTERS))
    for value in range(256)
]


def tcp_flags(series: pl.Series) -> pl.Series:
    """8-char 'CEUAPRSF' flags; 6-char (pre-ECN) flags gain '..'; numeric (-N in 1.7.8) decoded."""

    def parse(s: pl.Series) -> pl.Series:
        s = s.str.strip_chars()
        numeric = s.cast(pl.Int64, strict=False)
        decoded = numeric.replace_strict(
            list(range(256)), _FLAG_TABLE, default=None, return_dtype=pl.String
        )
        frame = pl.DataFrame({"s": s, "d": decoded})
        return frame.select(
            pl.when(pl.col("d").is_not_null())
            .then(pl.col("d"))
            .when(pl.col("s").str.contains(r"^[.A-Z]{8}$"))
            .then(pl.col("s"))
            .when(pl.col("s").str.contains(r"^[.A-Z]{6}$"))
            .then(pl.lit("..") + pl.col("s"))
            .otherwise(None)
        ).to_series()

    return by_unique(series, parse, pl.String)


def proto_name(series: pl.Series) -> pl.Series:
    """Names as nfdump prints them; numbers (csv 1.7.6+, -N) mapped with PROTO_NAMES."""

    def parse(s: pl.Series) -> pl.Series:
        s = s.cast(pl.String).str.strip_chars()
        numeric = s.cast(pl.Int64, strict=False)
        named = numeric.replace_strict(
            list(PROTO_NAMES), list(PROTO_NAMES.values()), default=None, return_dtype=pl.String
        )
        return (
            pl.DataFrame({"s": s, "n": named, "i": numeric})
            .select(
                pl.when(pl.col("n").is_not_null())
                .then(pl.col("n"))
                .when(pl.col("i").is_not_null())
                .then(pl.col("i").cast(pl.String))
                .otherwise(pl.col("s"))
            )
            .to_series()
        )

    return by_unique(series.cast(pl.String), parse, pl.String)


def icmp_port(series: pl.Series) -> pl.Series:
    """'8.0' (type.code) -> 8*256+0 as nfdump's csv prints it; plain numbers unchanged."""

    def parse(s: pl.Series) -> pl.Series:
        parts = s.str.strip_chars().str.split_exact(".", 1)
        first = parts.struct.field("field_0").cast(pl.Int64, strict=False)
        second = parts.struct.field("field_1").cast(pl.Int64, strict=False)
        return (first * 256 + second).fill_null(first)

    return by_unique(series, parse, pl.Int32)


def clamp_durations(frame: pl.DataFrame) -> pl.DataFrame:
    """Absurd or negative durations: keep the flow, duration 0, ts_last = ts_first."""
    bad = (
        pl.col("duration").is_null()
        | (pl.col("duration") < 0)
        | (pl.col("duration") > MAX_DURATION_S)
        | (pl.col("ts_last") < pl.col("ts_first"))
    )
    return frame.with_columns(
        duration=pl.when(bad).then(0.0).otherwise(pl.col("duration")),
        ts_last=pl.when(bad).then(pl.col("ts_first")).otherwise(pl.col("ts_last")),
    )


def end_from_duration(frame: pl.DataFrame) -> pl.DataFrame:
    """Text formats print first-seen and a duration: last-seen follows (to the millisecond)."""
    ok = pl.col("duration").is_between(0, MAX_DURATION_S)
    return frame.with_columns(
        ts_last=pl.when(ok)
        .then(pl.col("ts_first") + pl.duration(milliseconds=(pl.col("duration") * 1000).round(0)))
        .otherwise(pl.col("ts_first"))
    )
