"""Sampled exports: routers that export 1:N sampled flows print packet and byte counts already
multiplied by N (3,000 packets in 0 ms is one sampled packet at 1:3000). The features are
computed on the counts divided back by N, so a sampled flow looks like what was sampled, not
like a flood.

The rate is `[ingest] sampling` when set (N > 1; 1 = never sampled), else inferred per dump
file: when every flow of a file with at least MIN_FLOWS flows has a packet count that is a
multiple of one N >= MIN_RATE, that N is the rate. (Unsampled dumps have 1-, 3- and 7-packet
flows; a Zeek conversion with two packets per DNS flow has a greatest common divisor of 2,
below MIN_RATE.)
"""

from __future__ import annotations

import numpy as np
import polars as pl

MIN_FLOWS = 20
MIN_RATE = 10


def infer_rates(flows: pl.DataFrame) -> pl.Series:
    """The sampling rate of each flow's dump file (1 = not sampled), inferred from the packet
    counts of that file's flows in `flows`."""
    if flows.height == 0:
        return pl.Series("rate", [], dtype=pl.Int64)
    if "file" not in flows.columns:
        flows = flows.with_columns(file=pl.lit(""))
    rates: dict[str, int] = {}
    for (name,), part in flows.select("file", "packets").group_by("file"):
        packets = part["packets"].drop_nulls().to_numpy().astype(np.int64)
        packets = packets[packets > 0]
        rate = int(np.gcd.reduce(packets)) if len(packets) >= MIN_FLOWS else 1
        rates[str(name)] = rate if rate >= MIN_RATE else 1
    return flows["file"].replace_strict(rates, default=1, return_dtype=pl.Int64).alias("rate")


def unsample(flows: pl.DataFrame | None, rate: int | pl.Series) -> pl.DataFrame | None:
    """`flows` with packets and bytes divided by the rate (at least one packet; bytes keep their
    per-packet size), or unchanged where the rate is 1."""
    if flows is None or flows.height == 0:
        return flows
    r = pl.lit(rate) if isinstance(rate, int) else pl.lit(rate)
    if isinstance(rate, int) and rate <= 1:
        return flows
    packets = (pl.col("packets") / r).round(0).cast(pl.Int64).clip(lower_bound=1)
    bpp = pl.col("bytes") / pl.max_horizontal(pl.col("packets"), pl.lit(1))
    return flows.with_columns(
        bytes=pl.when(r > 1).then((bpp * packets).round(0).cast(pl.Int64)).otherwise(pl.col("bytes")),
        packets=pl.when(r > 1).then(packets).otherwise(pl.col("packets")),
    )


def rates_for(flows: pl.DataFrame, configured: int) -> pl.Series:
    """Per-flow rate: the configured one (> 0), else inferred per file."""
    if configured and configured > 0:
        return pl.Series("rate", [int(configured)] * flows.height, dtype=pl.Int64)
    return infer_rates(flows)
