"""A stable text key for "the same feature vector in the same context".

Definition (shared by the Suppressor, the LabelStore and retraining; version `v1`):

    v1|<proto>|<role>|p=<packets>|b=<bytes>|d=<duration bucket>|cf=<client flows>|cp=<client peers>

- role: `query` (destination port 53), `answer` (source port 53, not destination), `other`.
- packets and bytes rounded to `digits` significant digits (default 3: exact below 1000),
  written as integer mantissa and exponent (`128e0`), so the key is exact text.
- duration bucket: floor(log2(1 + duration in ms)), i.e. octaves (0 ms, 1 ms, 2-3 ms, ..., 1 min).
- window context: the flow's client (the end that is not port 53) in the 10-second tumbling
  window of its ts_first: cf = floor(log2(flows of that client in the window)),
  cp = floor(log2(distinct servers it talked to there)). Counted over the frame given plus
  `history` (earlier flows), so a window spanning a rotation sees both files.

Why not the Detector's full feature vector: it holds continuous per-conversation context (spans,
gaps, shares) that makes nearly every flow unique, so "the same vector" would match almost
nothing, and it changes with every model. This key is the flow's shape plus a coarse activity
level of its client: a normal lookup repeated by an equally quiet client matches; the same
packet size inside a flood or a tunnel burst (a busier client window) does not. It needs only
the canonical columns, so it is cheap (a few whole-column expressions) and stays valid across
model versions.
"""

from __future__ import annotations

import polars as pl

from engine.core.roles import client_addr, role_name, server_addr

KEY_VERSION = "v1"
DEFAULT_DIGITS = 3
CONTEXT_WINDOW = "10s"


def rounded_text(x: pl.Expr, digits: int) -> pl.Expr:
    """x rounded to `digits` significant digits as exact text: `128`, `446e1`, `-123e-5`."""
    x = x.cast(pl.Float64)
    exp = x.abs().log10().floor().cast(pl.Int64) - (digits - 1)
    mant = (x / pl.lit(10.0).pow(exp)).round(0).cast(pl.Int64)
    # 999.6 rounds to 1000 at 3 digits: renormalise so one value has one spelling.
    over = mant.abs() >= 10**digits
    mant = pl.when(over).then(mant // 10).otherwise(mant)
    exp = pl.when(over).then(exp + 1).otherwise(exp)
    finite = pl.concat_str([mant.cast(pl.String), pl.lit("e"), exp.cast(pl.String)])
    return (
        pl.when(x.is_null())
        .then(pl.lit("null"))
        .when(x.is_nan())
        .then(pl.lit("nan"))
        .when(x.is_infinite())
        .then(pl.when(x > 0).then(pl.lit("inf")).otherwise(pl.lit("-inf")))
        .when((x == x.round(0)) & (x.abs() < 10**digits))
        .then(x.cast(pl.Int64).cast(pl.String))  # small integers (counts) read as themselves
        .otherwise(finite)
    )


def _octave(x: pl.Expr) -> pl.Expr:
    return x.cast(pl.Float64).clip(lower_bound=0.0).log(2).floor().cast(pl.Int64)


def vector_keys(
    flows: pl.DataFrame, history: pl.DataFrame | None = None, digits: int = DEFAULT_DIGITS
) -> pl.Series:
    """One key per row of `flows` (see the module docstring), same order."""
    needed = ["ts_first", "duration", "proto", "src_addr", "src_port", "dst_addr", "dst_port",
              "packets", "bytes"]
    frame = flows.select(needed).with_columns(pl.lit(True).alias("__own"))
    if history is not None and history.height:
        # Only history that can share a 10 s window with these flows matters.
        start = flows["ts_first"].min()
        if start is not None:
            earlier = history.select(needed).filter(
                pl.col("ts_first").dt.truncate(CONTEXT_WINDOW)
                >= pl.lit(start).dt.truncate(CONTEXT_WINDOW)
            )
            frame = pl.concat([earlier.with_columns(pl.lit(False).alias("__own")), frame])
    window = [client_addr(), pl.col("ts_first").dt.truncate(CONTEXT_WINDOW)]
    duration_ms = pl.col("duration").cast(pl.Float64).fill_nan(0.0).fill_null(0.0) * 1000.0
    keyed = frame.with_columns(
        pl.len().over(window).alias("__cf"),
        server_addr().n_unique().over(window).alias("__cp"),
    ).filter(pl.col("__own"))
    return keyed.select(
        pl.concat_str(
            [
                pl.lit(KEY_VERSION),
                pl.col("proto").fill_null(""),
                role_name(),
                pl.concat_str([pl.lit("p="), rounded_text(pl.col("packets"), digits)]),
                pl.concat_str([pl.lit("b="), rounded_text(pl.col("bytes"), digits)]),
                pl.concat_str([pl.lit("d="), _octave(1.0 + duration_ms).cast(pl.String)]),
                pl.concat_str([pl.lit("cf="), _octave(pl.col("__cf")).cast(pl.String)]),
                pl.concat_str([pl.lit("cp="), _octave(pl.col("__cp")).cast(pl.String)]),
            ],
            separator="|",
        ).alias("vector_key")
    ).to_series()


def with_vector_keys(
    scored: pl.DataFrame, history: pl.DataFrame | None = None, digits: int = DEFAULT_DIGITS
) -> pl.DataFrame:
    """`scored` plus its `vector_key` column (kept if already there). The pipeline attaches it
    so that a row the TUI hands to LabelStore.add carries the key a vector label needs."""
    if "vector_key" in scored.columns:
        return scored
    return scored.with_columns(vector_keys(scored, history, digits))

