"""Per-source summaries of ALL scored flows of a sliding window of flow time, kept incrementally.

The live pipeline scores ~100k-flow batches; re-summarising every flow of the window on each
batch would cost O(window) per batch. Instead each batch is reduced to partial aggregates per
(src_addr, time bucket), buckets aligned to multiples of the bucket width on the flow clock, and
`snapshot()` combines the buckets of the window into exactly what `summarize_sources` returns for
the same flows (SOURCE_SCHEMA, same order, `activity` = one count per bucket of the window).

Distinct peers and destination ports cannot be summed across buckets, so the distinct
(src_addr, dst_addr) and (src_addr, dst_port) pairs are kept per bucket, deduplicated on insert,
as 64-bit polars hashes of the addresses: less memory than the strings and several times faster
to count (bench/sources_window.py). A collision would undercount by one; for n pairs the odds of
any are below n²/2^64, about 2e-7 at the 2M-pair bound. They are bounded by `max_pairs`: past it, new pairs are no longer recorded (every other column
stays exact) and `peers`/`dst_ports` become lower bounds; `overflowed` says so until the buckets
with unrecorded pairs leave the window, and the owner reports it. Refusing new pairs rather than
evicting old buckets keeps every other column exact and the cost per batch flat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from engine.core.schema import NORMAL
from engine.detect.sources import SOURCE_SCHEMA, in_scope

DEFAULT_BUCKETS = 12
MAX_PAIRS = 2_000_000  # distinct (source, peer) + (source, port) pairs kept per window

_EPOCH = datetime(1970, 1, 1)


@dataclass
class _Bucket:
    totals: pl.DataFrame    # src_addr, flows, packets, bytes, suspicious, max_score, first_seen, last_seen
    verdicts: pl.DataFrame  # src_addr, verdict, count (suspicious, non-normal flows only)
    peers: pl.DataFrame     # src_hash, dst_hash (distinct)
    ports: pl.DataFrame     # src_hash, dst_port (distinct)
    cut: bool = False       # some pairs of this bucket were not recorded (the bound was reached)

    @property
    def pairs(self) -> int:
        return self.peers.height + self.ports.height


class SourceWindow:
    """Incremental `summarize_sources` over the last `seconds` of flow time.

    The window is the `buckets` buckets (each `seconds / buckets` wide, whole milliseconds)
    ending with the bucket of the newest `ts_first` seen; flows older than that are ignored,
    and buckets that fall out of it are dropped. Batches may arrive in any time order.
    """

    def __init__(self, seconds: float, *, threshold: float, buckets: int = DEFAULT_BUCKETS,
                 max_pairs: int = MAX_PAIRS):
        if buckets < 1:
            raise ValueError("buckets must be at least 1")
        self.buckets = buckets
        self.width_ms = max(1, round(seconds * 1000 / buckets))
        self.threshold = threshold
        self.max_pairs = max_pairs
        self._newest: int | None = None  # bucket index (since the epoch) of the newest flow
        self._buckets: dict[int, _Bucket] = {}
        self._cached: pl.DataFrame | None = None

    @property
    def window(self) -> tuple[datetime, datetime] | None:
        """[start, end) of the window in flow time, None before the first flow."""
        if self._newest is None:
            return None
        first = self._newest - self.buckets + 1
        return (_EPOCH + timedelta(milliseconds=first * self.width_ms),
                _EPOCH + timedelta(milliseconds=(self._newest + 1) * self.width_ms))

    @property
    def overflowed(self) -> bool:
        """Some pairs of the window were not recorded: peers/dst_ports are lower bounds."""
        return any(b.cut for b in self._buckets.values())

    @property
    def pairs(self) -> int:
        return sum(b.pairs for b in self._buckets.values())

    @property
    def nbytes(self) -> int:
        """Estimated memory held by the window's aggregates and pair tables."""
        return sum(
            int(frame.estimated_size())
            for b in self._buckets.values() for frame in (b.totals, b.verdicts, b.peers, b.ports)
        )

    def add(self, scored: pl.DataFrame) -> None:
        """Fold a batch of scored flows (canonical columns + score, verdict) into the window."""
        flows = scored.select(
            "src_addr", "dst_addr", "dst_port", "packets", "bytes", "score", "verdict", "ts_first", "ts_last",
            (pl.col("ts_first").cast(pl.Datetime("ms")).cast(pl.Int64) // self.width_ms).alias("_bucket"),
        ).filter(pl.col("_bucket").is_not_null())
        if flows.height == 0:
            return
        newest = int(flows.select(pl.col("_bucket").max()).item())
        if self._newest is None or newest > self._newest:
            self._newest = newest
            first = newest - self.buckets + 1
            for old in [b for b in self._buckets if b < first]:
                del self._buckets[old]
        flows = flows.filter(pl.col("_bucket") > self._newest - self.buckets)
        if flows.height == 0:
            return
        self._cached = None
        suspicious = pl.col("score") >= self.threshold
        totals = flows.group_by("_bucket", "src_addr").agg(
            pl.len().cast(pl.UInt32).alias("flows"),
            in_scope(flows.columns).sum().cast(pl.UInt32).alias("dns_flows"),
            pl.col("packets").sum(),
            pl.col("bytes").sum(),
            suspicious.sum().cast(pl.UInt32).alias("suspicious"),
            pl.col("score").max().alias("max_score"),
            pl.col("ts_first").min().alias("first_seen"),
            pl.col("ts_last").max().alias("last_seen"),
        )
        verdicts = (
            flows.filter(suspicious & (pl.col("verdict") != NORMAL))
            .group_by("_bucket", "src_addr", "verdict")
            .agg(pl.len().cast(pl.UInt32).alias("count"))
        )
        src_hash = pl.col("src_addr").hash().alias("src_hash")
        peers = flows.select("_bucket", src_hash, pl.col("dst_addr").hash().alias("dst_hash")).unique()
        ports = flows.select("_bucket", src_hash, "dst_port").unique()
        parts = {name: dict(frame.partition_by("_bucket", as_dict=True, include_key=False))
                 for name, frame in (("totals", totals), ("verdicts", verdicts), ("peers", peers), ("ports", ports))}
        room = self.max_pairs - self.pairs
        for (key,), batch_totals in parts["totals"].items():
            held = self._buckets.get(key) or _Bucket(
                batch_totals.clear(), _empty(verdicts), _empty(peers), _empty(ports))
            new_peers, cut_peers = _merge_distinct(held.peers, parts["peers"].get((key,), _empty(peers)), room)
            room -= new_peers.height - held.peers.height
            new_ports, cut_ports = _merge_distinct(held.ports, parts["ports"].get((key,), _empty(ports)), room)
            room -= new_ports.height - held.ports.height
            self._buckets[key] = _Bucket(
                _merge_totals(held.totals, batch_totals),
                pl.concat([held.verdicts, parts["verdicts"].get((key,), _empty(verdicts))])
                .group_by("src_addr", "verdict").agg(pl.col("count").sum()),
                new_peers,
                new_ports,
                held.cut or cut_peers or cut_ports,
            )

    def snapshot(self) -> pl.DataFrame:
        """SOURCE_SCHEMA over the flows of the window; equals summarize_sources(those flows,
        window=self.window, buckets=self.buckets)."""
        if self._cached is None:
            self._cached = self._summarize()
        return self._cached

    def _summarize(self) -> pl.DataFrame:
        if not self._buckets or self._newest is None:
            return pl.DataFrame(schema=SOURCE_SCHEMA)
        first = self._newest - self.buckets + 1
        keyed = [(k, b) for k, b in sorted(self._buckets.items())]

        def stacked(name: str) -> pl.DataFrame:
            return pl.concat([getattr(b, name).with_columns(_bucket=pl.lit(k, pl.Int64)) for k, b in keyed])

        totals = stacked("totals")
        summary = totals.group_by("src_addr").agg(*_combine_totals())
        peers = pl.concat([b.peers for _, b in keyed]).group_by("src_hash").agg(
            pl.col("dst_hash").n_unique().alias("peers"))
        ports = pl.concat([b.ports for _, b in keyed]).group_by("src_hash").agg(
            pl.col("dst_port").n_unique().alias("dst_ports"))
        top_verdict = (
            stacked("verdicts")
            .group_by("src_addr", "verdict")
            .agg(pl.col("count").sum().alias("len"))
            .sort(["src_addr", "len", "verdict"], descending=[False, True, False])
            .group_by("src_addr", maintain_order=True)
            .first()
            .select("src_addr", pl.col("verdict").alias("top_verdict"))
        )
        # one flow count per bucket of the window: `buckets` column expressions, no grid join
        activity = totals.group_by("src_addr").agg(
            pl.concat_list(
                pl.col("flows").filter(pl.col("_bucket") == first + i).sum().cast(pl.UInt32)
                for i in range(self.buckets)
            ).alias("activity")
        )
        out = (
            summary.with_columns(pl.col("src_addr").hash().alias("src_hash"))
            .join(peers, on="src_hash", how="left")
            .join(ports, on="src_hash", how="left")
            .join(top_verdict, on="src_addr", how="left")
            .join(activity, on="src_addr", how="left")
            .with_columns(
                (pl.col("suspicious") / pl.col("flows")).alias("suspicious_share"),
                pl.col("top_verdict").fill_null(NORMAL),
                pl.col("peers", "dst_ports").fill_null(0),
            )
            .sort(["max_score", "flows", "src_addr"], descending=[True, True, False])
        )
        return out.select(pl.col(name).cast(dtype) for name, dtype in SOURCE_SCHEMA.items())


def _combine_totals() -> list[pl.Expr]:
    """Per-source partial totals combined: sums add up, extremes take the extreme."""
    return [
        pl.col("flows", "dns_flows", "packets", "bytes", "suspicious").sum(),
        pl.col("max_score").max(),
        pl.col("first_seen").min(),
        pl.col("last_seen").max(),
    ]


def _empty(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("_bucket").clear()


def _merge_totals(held: pl.DataFrame, batch: pl.DataFrame) -> pl.DataFrame:
    if held.height == 0:
        return batch
    return pl.concat([held, batch]).group_by("src_addr").agg(*_combine_totals())


def _merge_distinct(held: pl.DataFrame, batch: pl.DataFrame, room: int) -> tuple[pl.DataFrame, bool]:
    """`held` plus the pairs of `batch` it lacks, at most `room` of them; and whether some were cut."""
    new = batch if held.height == 0 else batch.join(held, on=batch.columns, how="anti", nulls_equal=True)
    if new.height == 0:
        return held, False
    room = max(0, room)
    return pl.concat([held, new.head(room)]), new.height > room
