"""Whole-column polars expressions turning nfdump's printed fields into canonical columns.

Every parser reduces its input to a frame of raw fields (strings, or already typed where a
reader could type them) and describes the canonical columns as expressions over it; `build`
evaluates them in one lazy query so polars can spread the columns over the cores.
"""

from __future__ import annotations

import polars as pl

from engine.core.schema import FLOW_SCHEMA, PROTO_NAMES, TCP_FLAG_LETTERS

TS_FORMAT = "%Y-%m-%d %H:%M:%S%.f"
# nfdump scales by powers of 1000 (K, M, G, T) and prints one decimal.
_UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
# A duration longer than this, or negative, comes from an exporter clock bug (records that end
# before they start print as -2147483648d ... or 18446744073709540.000): we keep the flow and
# clamp it to duration 0 with ts_last = ts_first, the same in every format.
MAX_DURATION_S = 366 * 86400.0
# The canonical contract every flow kept satisfies; a row outside it is a malformed record
# (a zero timestamp printed west of UTC as 1969-12-31, a port of 99999, a negative count).
PORT_RANGE = (0, 65535)
YEAR_RANGE = (1970, 2200)
ICMP_PROTOS = ("ICMP", "ICMP6")
REQUIRED = (
    "ts_first",
    "proto",
    "src_addr",
    "src_port",
    "dst_addr",
    "dst_port",
    "packets",
    "bytes",
    "flows",
)

_PROTO_BY_NUMBER = {str(k): v for k, v in PROTO_NAMES.items()}
_FLAGS_BY_NUMBER = {
    str(value): "".join(ch if value & (0x80 >> i) else "." for i, ch in enumerate(TCP_FLAG_LETTERS))
    for value in range(256)
}


def ts(c: pl.Expr) -> pl.Expr:
    return c.str.to_datetime(TS_FORMAT, time_unit="ms", strict=False)


def proto(c: pl.Expr) -> pl.Expr:
    """Names as nfdump prints them; numbers (csv 1.7.6+, -N) mapped like nfdump's names."""
    return c.replace(_PROTO_BY_NUMBER)


def tcp_flags(c: pl.Expr) -> pl.Expr:
    """8-char 'CEUAPRSF'; 6-char (pre-ECN nfdump) flags gain '..'; numeric (-N, 1.7.8) decoded."""
    f = c.replace(_FLAGS_BY_NUMBER)
    return pl.when(f.str.len_bytes() == 6).then(pl.lit("..") + f).otherwise(f)


def port(c: pl.Expr, *, type_code: bool) -> pl.Expr:
    """Ports; with type_code, ICMP 'type.code' folds to type*256+code like nfdump's csv."""
    plain = c.cast(pl.Int32, strict=False)
    if not type_code:
        return plain
    parts = c.str.split_exact(".", 1)
    folded = parts.struct.field("field_0").cast(pl.Int32, strict=False) * 256 + parts.struct.field(
        "field_1"
    ).cast(pl.Int32, strict=False)
    return pl.coalesce(plain, folded)


def endpoint(c: pl.Expr, *, type_code: bool | pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """'addr:port' (IPv4) or 'addr.port' (IPv6, maybe '..'-shortened) -> (addr, port text).

    IPv4 has one ':' and dots before it. IPv6 carries the port after the last '.', or after
    the last two for an ICMP type.code, so '2001:db8..2.53' is ('2001:db8..2', '53').
    `type_code` (a flag, or a boolean expression per row) says where to expect a type.code:
    only there, since an IPv6 address may end in an IPv4 tail ('::ffff:192.0.2.1.40001').
    """
    parts = c.str.split_exact(":", 2)
    v4 = (
        parts.struct.field("field_2").is_null()
        & parts.struct.field("field_1").is_not_null()
        & parts.struct.field("field_0").str.contains(".", literal=True)
    )
    one = c.str.extract(r"\.([0-9]+)$", 1)
    v6_port = one
    if type_code is not False:
        two = c.str.extract(r"\.([0-9]+\.[0-9]+)$", 1)
        v6_port = pl.when(type_code).then(pl.coalesce(two, one)).otherwise(one)
    v6_addr = c.str.head(c.str.len_chars() - v6_port.str.len_chars() - 1)
    addr = pl.when(v4).then(parts.struct.field("field_0")).otherwise(v6_addr)
    port_text = pl.when(v4).then(parts.struct.field("field_1")).otherwise(v6_port)
    return addr, port_text


def scaled(c: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """'4.5 M', '1.4M', '349.3 G', '3000' -> (Int64, lost-precision flag)."""
    plain = c.cast(pl.Int64, strict=False)
    unit = c.str.slice(-1, 1)
    mult = unit.replace_strict(
        list(_UNITS), list(_UNITS.values()), default=None, return_dtype=pl.Float64
    )
    mantissa = c.str.strip_chars_end(" KMGT").cast(pl.Float64, strict=False)
    # past Int64 ('9999999.9 T' packets) the value is null: the row is skipped as malformed
    value = pl.coalesce(plain, (mantissa * mult).round(0).cast(pl.Int64, strict=False))
    return value, plain.is_null() & value.is_not_null()


def duration(c: pl.Expr) -> pl.Expr:
    """'7.040' (1.6, -N), '00:35:55.052' and '5d 09:08:01.812' (1.7) -> seconds.

    Anything with a minus sign is an end-before-start record: null here, clamped later.
    """
    plain = c.cast(pl.Float64, strict=False)
    hms = c.str.slice(-12, 12)
    well_formed = (hms.str.slice(2, 1) == ":") & (hms.str.slice(5, 1) == ":")
    days = (
        pl.when(c.str.contains("d", literal=True))
        .then(c.str.split_exact("d", 1).struct.field("field_0").cast(pl.Float64, strict=False))
        .otherwise(0.0)
    )
    total = (
        days * 86400.0
        + hms.str.slice(0, 2).cast(pl.Float64, strict=False) * 3600.0
        + hms.str.slice(3, 2).cast(pl.Float64, strict=False) * 60.0
        + hms.str.slice(6, 6).cast(pl.Float64, strict=False)
    )
    value = pl.coalesce(plain, pl.when(well_formed).then(total))
    return pl.when(c.str.contains("-", literal=True)).then(None).otherwise(value).round(3)


def by_unique(series: pl.Series, parse) -> pl.Series:
    """Apply an expression to the distinct values only and map back: nfdump prints the same
    second, duration or scaled number many times over."""
    filled = series.fill_null("")
    uniq = filled.unique()
    parsed = uniq.to_frame("v").select(parse(pl.col("v"))).to_series()
    return filled.replace_strict(uniq, parsed, return_dtype=parsed.dtype)


def small_domain(series: pl.Series, parse) -> pl.Series:
    """Like `by_unique` for columns with a handful of values (protocols, flags): when the
    parse changes none of them, the column is kept as it is (no second pass)."""
    uniq = series.unique()
    parsed = uniq.to_frame("v").select(parse(pl.col("v"))).to_series()
    if parsed.dtype == series.dtype and bool((parsed == uniq).fill_null(False).all()):
        if parsed.null_count() == 0:
            return series
    return series.replace_strict(uniq, parsed, return_dtype=parsed.dtype)


def ts_series(text: pl.Series) -> pl.Series:
    """'YYYY-MM-DD HH:MM:SS.mmm' (or without ms) -> Datetime(ms); the seconds part repeats."""
    frame = text.to_frame("t").select(
        sec=pl.col("t").str.slice(0, 19),
        frac=pl.when(pl.col("t").str.len_bytes() == 23)
        .then(pl.col("t").str.slice(20, 3).cast(pl.Int64, strict=False))
        .when(pl.col("t").str.len_bytes() == 19)
        .then(0),
    )
    seconds = by_unique(frame["sec"], ts)
    return (seconds + pl.Series(frame["frac"]).cast(pl.Duration("ms"))).alias("ts")


def scaled_series(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Like `scaled`, but only the rows that are not plain integers take the slow parse."""
    plain = text.cast(pl.Int64, strict=False)
    missing = plain.is_null() & text.is_not_null()
    if not missing.any():
        return plain, pl.Series([False], dtype=pl.Boolean).extend_constant(False, text.len() - 1)
    rows = missing.arg_true()
    parsed = by_unique(text.gather(rows), lambda c: scaled(c)[0])
    value = plain.scatter(rows, parsed)
    return value, missing & value.is_not_null()


def build(raw: pl.DataFrame, columns: dict[str, pl.Expr], *, file: str):
    """Evaluate `columns` (canonical name -> expression over `raw`, plus `line`) into flows.

    Missing canonical columns become nulls (e.g. tcp_flags for formats that do not print
    them), ts_last is derived from the duration when not printed, absurd durations are
    clamped. Returns (flows of the valid rows, validity mask over `raw`).
    """
    if raw.height == 0:
        return pl.DataFrame(schema=FLOW_SCHEMA), pl.Series([], dtype=pl.Boolean)
    columns = dict(columns)
    columns.setdefault("flows", pl.lit(1, dtype=pl.Int32))
    columns.setdefault("approx", pl.lit(False))
    derive_last = "ts_last" not in columns
    if derive_last:
        columns["ts_last"] = pl.lit(None, dtype=pl.Datetime("ms"))
    for name, dtype in FLOW_SCHEMA.items():
        if name not in columns and name != "file":
            columns[name] = pl.lit(None, dtype=dtype)
    first = pl.col("ts_first")
    dur = pl.col("duration")
    sane = dur.is_between(0.0, MAX_DURATION_S)
    if derive_last:
        millis = pl.when(sane).then(dur * 1000.0).otherwise(0.0).round(0).cast(pl.Int64)
        last = first + pl.duration(milliseconds=millis)
    else:
        last = pl.col("ts_last")
    sane = sane & (last >= first)
    # Casts are not strict: a value that does not fit its column (a tos of 99999, a count past
    # Int64) makes the row invalid instead of failing the whole read.
    fits = [
        ~(expr.is_not_null() & expr.cast(FLOW_SCHEMA[name], strict=False).is_null())
        for name, expr in columns.items()
        if name in ("tos", "flows")
    ]
    in_range = [
        pl.col("src_port").is_between(*PORT_RANGE),
        pl.col("dst_port").is_between(*PORT_RANGE),
        pl.col("packets") >= 0,
        pl.col("bytes") >= 0,
        pl.col("flows") >= 0,
        pl.col("ts_first").dt.year().is_between(*YEAR_RANGE),
        # an address is one printed token: empty or blank is a damaged line (the csv reader
        # and the line parser trim blanks differently, and neither is an address)
        pl.col("src_addr").str.contains(r"^\S+$"),
        pl.col("dst_addr").str.contains(r"^\S+$"),
    ]
    frame = (
        raw.lazy()
        .select(
            **{name: expr.cast(FLOW_SCHEMA[name], strict=False) for name, expr in columns.items()},
            _fits=pl.all_horizontal([pl.lit(True), *fits]),
        )
        .with_columns(
            duration=pl.when(sane).then(dur).otherwise(0.0),
            ts_last=pl.when(sane).then(last).otherwise(first),
            file=pl.lit(file, dtype=pl.String),
            _valid=pl.all_horizontal([pl.col(c).is_not_null() for c in REQUIRED])
            & pl.all_horizontal(in_range).fill_null(False)
            & pl.col("_fits"),
        )
        .collect()
    )
    valid = frame["_valid"]
    if not bool(valid.all()):
        frame = frame.filter(valid)
    return frame.select([pl.col(n).cast(t) for n, t in FLOW_SCHEMA.items()]), valid
