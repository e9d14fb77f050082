"""Per-source summary cost per batch in the live pipeline: incremental SourceWindow vs recomputing.

    python bench/sources_window.py                          # 30 batches of 100k flows over 15 min
    python bench/sources_window.py --batches 50 --batch-flows 100000 --sources 50000 --peers 20000

Synthetic scored flows (random sources/peers/ports, 5% suspicious) in time order, `--batches`
batches spread over the window. For each batch: SourceWindow.add + snapshot (what the pipeline
does per batch). Baseline, same run, at the end: summarize_sources over every flow of the window
(what a from-scratch summary would cost per batch once the window is full). Also the number of
distinct pairs held and the RSS. Figures on a shared 2-core machine are noisy; compare ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.detect.sources import summarize_sources  # noqa: E402
from engine.live.source_window import MAX_PAIRS, SourceWindow  # noqa: E402

T0 = datetime(2026, 11, 22, 8, 0)


def batch(rng, n: int, start_ms: int, span_ms: int, sources: int, peers: int) -> pl.DataFrame:
    ts = T0 + timedelta(milliseconds=start_ms)
    score = rng.random(n)
    return pl.DataFrame({
        "ts_first": rng.integers(0, span_ms, n),
        "src_addr": rng.integers(0, sources, n),
        "dst_addr": rng.integers(0, peers, n),
        "dst_port": rng.choice([53, 53, 53, 5353, 443], n).astype(np.int32),
        "packets": rng.integers(1, 10, n),
        "bytes": rng.integers(40, 4000, n),
        "score": score,
    }).with_columns(
        ts_first=pl.lit(ts) + pl.duration(milliseconds=pl.col("ts_first")),
        src_addr=pl.format("10.{}.{}", pl.col("src_addr") // 256, pl.col("src_addr") % 256),
        dst_addr=pl.format("172.16.{}.{}", pl.col("dst_addr") // 256, pl.col("dst_addr") % 256),
        verdict=pl.when(pl.col("score") >= 0.95).then(pl.lit("dns_flood")).otherwise(pl.lit("normal")),
        score=pl.when(pl.col("score") >= 0.95).then(pl.col("score")).otherwise(pl.col("score") / 2),
    ).with_columns(pl.col("ts_first").cast(pl.Datetime("ms")), ts_last=pl.col("ts_first").cast(pl.Datetime("ms")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--batch-flows", type=int, default=100_000)
    ap.add_argument("--window-seconds", type=float, default=900.0)
    ap.add_argument("--sources", type=int, default=20_000)
    ap.add_argument("--peers", type=int, default=5_000)
    ap.add_argument("--max-pairs", type=int, default=MAX_PAIRS)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    span_ms = int(args.window_seconds * 1000 / args.batches * 1.5)  # the window rolls past the start
    win = SourceWindow(args.window_seconds, threshold=0.5, max_pairs=args.max_pairs)
    kept: list[pl.DataFrame] = []
    add_s, snap_s = [], []
    for i in range(args.batches):
        b = batch(rng, args.batch_flows, i * span_ms, span_ms, args.sources, args.peers)
        kept.append(b)
        t = time.perf_counter()
        win.add(b)
        add_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        out = win.snapshot()
        snap_s.append(time.perf_counter() - t)
        if (i + 1) % 10 == 0:
            rss = psutil.Process().memory_info().rss / 2**20
            print(f"batch {i + 1}: add {add_s[-1] * 1000:.0f} ms, snapshot {snap_s[-1] * 1000:.0f} ms, "
                  f"{out.height:,} sources, {win.pairs:,} pairs, rss {rss:.0f} MiB", flush=True)
    start, end = win.window
    every = pl.concat(kept).filter(pl.col("ts_first").is_between(start, end, closed="left"))
    t = time.perf_counter()
    full = summarize_sources(every, threshold=0.5, window=(start, end))
    full_s = time.perf_counter() - t
    exact = ["peers", "dst_ports"] if win.overflowed else []  # lower bounds past max_pairs
    assert full.drop(exact).equals(win.snapshot().drop(exact)), "incremental summary differs"
    per_batch = statistics.median(a + s for a, s in zip(add_s, snap_s, strict=True))
    print(f"window: {every.height:,} flows, {full.height:,} sources, {win.pairs:,} pairs kept, "
          f"window state {win.nbytes / 2**20:.0f} MiB"
          + (" (bound reached: peers/dst_ports are lower bounds)" if win.overflowed else ""))
    print(f"incremental add+snapshot per batch (median): {per_batch * 1000:.0f} ms "
          f"(add {statistics.median(add_s) * 1000:.0f}, snapshot {statistics.median(snap_s) * 1000:.0f})")
    print(f"baseline summarize_sources over the window: {full_s * 1000:.0f} ms; ratio {full_s / per_batch:.1f}x")


if __name__ == "__main__":
    main()
