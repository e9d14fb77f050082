"""A stable text key for "the same feature vector in the same context".

Definition (the one the Suppressor, the LabelStore and retraining share):

- context = the flow's protocol and its DNS role: `query` when the destination port is 53,
  `answer` when the source port is 53 (and not the destination), `other` otherwise. The window
  context (per-client and per-destination aggregates over short windows) is already part of
  the Detector's feature vector, so two flows with equal keys also sit in equally busy windows.
- vector = every feature, in the order of the label's feature names, rounded to `digits`
  significant digits and written as an integer mantissa and a decimal exponent (`123e-1`),
  so the key is exact text: no float formatting, no hash function that may change between
  polars versions. Zero is `0`, missing is `null`, NaN is `nan`, infinities `inf`/`-inf`.

Keys are whole-column polars expressions (no Python loop over rows), so matching a window of
flows against the labelled keys is a string join.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

DEFAULT_DIGITS = 3


def role_expr() -> pl.Expr:
    return (
        pl.when(pl.col("dst_port") == 53)
        .then(pl.lit("query"))
        .when(pl.col("src_port") == 53)
        .then(pl.lit("answer"))
        .otherwise(pl.lit("other"))
    )


def client_expr() -> pl.Expr:
    """The client end of a DNS conversation (the end that is not port 53): the 'source'."""
    return (
        pl.when((pl.col("src_port") == 53) & (pl.col("dst_port") != 53))
        .then(pl.col("dst_addr"))
        .otherwise(pl.col("src_addr"))
    )


def _rounded_text(col: str, digits: int) -> pl.Expr:
    x = pl.col(col).cast(pl.Float64)
    ax = x.abs()
    exp = ax.log10().floor().cast(pl.Int64) - (digits - 1)
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
        .when(x == 0)
        .then(pl.lit("0"))
        .otherwise(finite)
    )


def vector_keys(
    flows: pl.DataFrame,
    features: pl.DataFrame,
    names: Sequence[str],
    digits: int = DEFAULT_DIGITS,
) -> pl.Series:
    """One key per row: `proto|role|f1|f2|...` (flows and features row-aligned)."""
    if flows.height != features.height:
        raise ValueError(f"flows ({flows.height}) and features ({features.height}) rows differ")
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise KeyError(f"feature column(s) missing: {', '.join(missing)}")
    frame = pl.concat(
        [
            flows.select(pl.col("proto").fill_null(""), role_expr().alias("__role")),
            features.select([pl.col(n).alias(f"__f{i}") for i, n in enumerate(names)]),
        ],
        how="horizontal",
    )
    parts = [pl.col("proto"), pl.col("__role")] + [
        _rounded_text(f"__f{i}", digits) for i in range(len(names))
    ]
    return frame.select(pl.concat_str(parts, separator="|").alias("vector_key")).to_series()


def vector_key_of(
    flow: Mapping[str, object], features: Mapping[str, float], digits: int = DEFAULT_DIGITS
) -> str:
    """The key of one flow (a row dict) and its feature row, same definition as vector_keys."""
    names = list(features)
    flows = pl.DataFrame(
        {
            "proto": [flow.get("proto")],
            "src_port": [flow.get("src_port")],
            "dst_port": [flow.get("dst_port")],
        },
        schema={"proto": pl.String, "src_port": pl.Int32, "dst_port": pl.Int32},
    )
    feats = pl.DataFrame({n: [features[n]] for n in names}, schema={n: pl.Float64 for n in names})
    return vector_keys(flows, feats, names, digits)[0]
