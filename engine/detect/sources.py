"""Per-source summaries of scored flows: who sends what, how suspicious, and when.

Shared by `flowtriage sources` and the live view's per-source aggregates.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from engine.core.schema import NORMAL
from engine.detect.scope import OUT_REASON


def in_scope(columns: list[str] | None = None) -> pl.Expr:
    """True for a scored flow that got a DNS verdict (its reasons do not say out of scope);
    every flow when there are no reasons (`columns` without one)."""
    if columns is not None and "reasons" not in columns:
        return pl.col("src_addr").is_null() | pl.col("src_addr").is_not_null()  # one per row
    return ~pl.col("reasons").fill_null("").str.starts_with(OUT_REASON)

SOURCE_SCHEMA: dict[str, pl.DataType] = {
    "src_addr": pl.String(),
    "flows": pl.UInt32(),
    "dns_flows": pl.UInt32(),  # in scope: DNS-relevant flows (engine.detect.scope)
    "packets": pl.Int64(),
    "bytes": pl.Int64(),
    "peers": pl.UInt32(),
    "dst_ports": pl.UInt32(),
    "suspicious": pl.UInt32(),
    "suspicious_share": pl.Float64(),
    "top_verdict": pl.String(),
    "max_score": pl.Float64(),
    "first_seen": pl.Datetime("ms"),
    "last_seen": pl.Datetime("ms"),
    "activity": pl.List(pl.UInt32()),
}


def summarize_sources(
    scored: pl.DataFrame,
    *,
    threshold: float,
    window: tuple[datetime, datetime] | None = None,
    buckets: int = 12,
) -> pl.DataFrame:
    """One row per source address (SOURCE_SCHEMA), most suspicious first.

    `activity` holds `buckets` flow counts (by ts_first) over the source's own [first, last]
    span, or over `window` when given, so rows share one time axis (sparklines side by side);
    flows outside `window` still count in the totals but not in `activity`.
    A flow is suspicious when its score >= threshold; `top_verdict` is the most common verdict
    among a source's suspicious flows (ties by name), or "normal" when there are none.
    """
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    flows = scored.with_columns(_suspicious=pl.col("score") >= threshold)
    summary = flows.group_by("src_addr").agg(
        pl.len().alias("flows"),
        in_scope(scored.columns).sum().alias("dns_flows"),
        pl.col("packets").sum(),
        pl.col("bytes").sum(),
        pl.col("dst_addr").n_unique().alias("peers"),
        pl.col("dst_port").n_unique().alias("dst_ports"),
        pl.col("_suspicious").sum().cast(pl.UInt32).alias("suspicious"),
        pl.col("score").max().alias("max_score"),
        pl.col("ts_first").min().alias("first_seen"),
        pl.col("ts_last").max().alias("last_seen"),
    )
    top_verdict = (
        flows.filter(pl.col("_suspicious") & (pl.col("verdict") != NORMAL))
        .group_by("src_addr", "verdict")
        .len()
        .sort(["src_addr", "len", "verdict"], descending=[False, True, False])
        .group_by("src_addr", maintain_order=True)
        .first()
        .select("src_addr", pl.col("verdict").alias("top_verdict"))
    )
    out = (
        summary.join(top_verdict, on="src_addr", how="left")
        .join(_activity(flows, window, buckets), on="src_addr", how="left")
        .with_columns(
            (pl.col("suspicious") / pl.col("flows")).alias("suspicious_share"),
            pl.col("top_verdict").fill_null(NORMAL),
        )
        .sort(["max_score", "flows", "src_addr"], descending=[True, True, False])
    )
    return out.select(pl.col(name).cast(dtype) for name, dtype in SOURCE_SCHEMA.items())


def _activity(flows: pl.DataFrame, window, buckets: int) -> pl.DataFrame:
    ts = pl.col("ts_first").cast(pl.Int64)
    if window is None:
        start = ts.min().over("src_addr")
        end = ts.max().over("src_addr")
    else:
        start = pl.lit(window[0]).cast(pl.Datetime("ms")).cast(pl.Int64)
        end = pl.lit(window[1]).cast(pl.Datetime("ms")).cast(pl.Int64)
    span = (end - start).clip(lower_bound=1)
    inside = flows if window is None else flows.filter(ts.is_between(start, end))
    counts = (
        inside.select(
            "src_addr",
            ((ts - start) * buckets // span).clip(0, buckets - 1).cast(pl.UInt32).alias("bucket"),
        )
        .group_by("src_addr", "bucket")
        .len()
    )
    grid = (
        flows.select(pl.col("src_addr").unique())
        .join(pl.DataFrame({"bucket": pl.arange(0, buckets, eager=True).cast(pl.UInt32)}), how="cross")
        .join(counts, on=["src_addr", "bucket"], how="left")
        .sort("src_addr", "bucket")
    )
    return grid.group_by("src_addr", maintain_order=True).agg(
        pl.col("len").fill_null(0).cast(pl.UInt32).alias("activity")
    )
