"""Backfill engines on a shared filesystem: in this process (`local`) and on Dask.

Both run the same two task functions (`scan_task`, `unit_task`) from engine.batch.backfill's
plan; they differ only in how tasks are mapped. Staged flows are Parquet files under
OUT/_backfill/staging, partitions are written whole into a temporary directory and renamed into
place, so a worker killed mid-write leaves no half partition under its final name. On a Dask
cluster OUT must be on storage every worker sees (NFS, a shared volume).
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from engine.batch.backfill import (
    META_DIR,
    STAGING_DIR,
    FileStat,
    InputFile,
    Store,
    TaskContext,
    Unit,
    failed_stat,
    history_rows,
    list_local,
    scan_bytes,
    score_file,
)
from engine.core.errors import UserError

# One thread per task slot: a worker runs as many tasks as it has slots, and polars/BLAS
# threads on top of that only oversubscribe the cores.
WORKER_ENV = {
    "POLARS_MAX_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    # joblib (the forest's n_jobs=-1) counts cores from this: one per task slot
    "LOKY_MAX_CPU_COUNT": "1",
}


def scan_task(source: InputFile, ctx: TaskContext, staging: str) -> FileStat:
    """Parse one dump and stage its flows; the stat says where (or what went wrong)."""
    try:
        data = Path(source.path).read_bytes()
    except OSError as exc:
        return failed_stat(source, exc)
    flows, stat = scan_bytes(data, source=source, timezone=ctx.timezone)
    if stat.error is None and flows.height:
        dest = Path(staging) / f"{stat.key}.parquet"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        flows.write_parquet(tmp)
        os.replace(tmp, dest)
        stat = replace(stat, staged=str(dest))
    return stat


def unit_task(unit: Unit, ctx: TaskContext, staging: str, out: str) -> int:
    """Score every file touching the unit's day with its routed history; write the day's rows
    as the partition. Returns the rows written."""
    cache: dict[str, pl.DataFrame] = {}

    def staged(key: str) -> pl.DataFrame:
        if key not in cache:
            if len(cache) > 8:  # history reaches a few files back: keep the recent ones
                cache.pop(next(iter(cache)))
            cache[key] = pl.read_parquet(Path(staging) / f"{key}.parquet")
        return cache[key]

    frames = []
    for stat, routes in zip(unit.files, unit.routes, strict=True):
        if not stat.rows:
            continue
        history = history_rows((staged(r.source), r.since) for r in routes)
        with warnings.catch_warnings():
            # joblib inside a Dask worker runs one job and says so per call: one is what we want
            warnings.filterwarnings("ignore", message="Inside a Dask worker")
            scored = score_file(staged(stat.key), history, ctx)
        frames.append(scored.filter(pl.col("day") == unit.day).drop("day"))
    rows = sum(f.height for f in frames)
    dest = Path(out) / f"exporter={unit.exporter}" / f"day={unit.day}"
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    if rows:
        tmp.mkdir(parents=True)
        pl.concat(frames).write_parquet(tmp / "part-0.parquet")
    if dest.exists():  # a partition left by a killed run, without its done marker
        shutil.rmtree(dest)
    if rows:
        os.replace(tmp, dest)
    return rows


class LocalEngine:
    """Tasks run one after another in this process."""

    name = "local"

    def __init__(self, out: str) -> None:
        self.out = out
        self.store = Store(out)
        self.staging = self.store.path(META_DIR, STAGING_DIR)

    def list_inputs(self, inputs: Sequence[str], *, glob: str = "*") -> list[InputFile]:
        return list_local(inputs, glob=glob)

    def _map(self, fn: Any, items: Sequence[Any], *args: Any) -> Iterator[tuple[Any, Any]]:
        for item in items:
            yield item, fn(item, *args)

    def scan(self, files: Sequence[InputFile], ctx: TaskContext) -> Iterator[list[FileStat]]:
        for _source, stat in self._map(scan_task, files, ctx, self.staging):
            yield [stat]

    def staged_ok(self, stat: FileStat) -> bool:
        return stat.staged is not None and os.path.exists(stat.staged)

    def score(
        self, units: Sequence[Unit], stats: Sequence[FileStat], ctx: TaskContext
    ) -> Iterator[tuple[Unit, int]]:
        yield from self._map(unit_task, units, ctx, self.staging, self.out)

    def drop_staging(self) -> None:
        self.store.delete(self.staging)

    def close(self) -> None:
        pass


class DaskEngine(LocalEngine):
    """Tasks mapped on a Dask cluster: a LocalCluster of this machine's cores, or the
    scheduler at `address`. The task context (model bytes included) is scattered once to every
    worker."""

    name = "dask"

    def __init__(self, out: str, *, address: str | None = None, workers: int | None = None) -> None:
        super().__init__(out)
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise UserError(
                "--engine dask needs Dask: pip install 'flowtriage[dask]'"
            ) from None
        self._cluster = None
        if address:
            self.client = Client(address)
        else:
            self._cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                processes=True, dashboard_address=None, env=dict(WORKER_ENV),
            )
            self.client = Client(self._cluster)
        self._ctx: dict[int, Any] = {}

    def _map(self, fn: Any, items: Sequence[Any], *args: Any) -> Iterator[tuple[Any, Any]]:
        from dask.distributed import as_completed

        if not items:
            return
        ctx, *rest = args
        if id(ctx) not in self._ctx:
            self._ctx[id(ctx)] = self.client.scatter(ctx, broadcast=True)
        shipped = self._ctx[id(ctx)]
        futures = self.client.map(fn, list(items), ctx=shipped, **_named(fn, rest), pure=False)
        index = {f.key: item for f, item in zip(futures, items, strict=True)}
        for future in as_completed(futures):
            yield index[future.key], future.result()

    def close(self) -> None:
        import logging

        # Workers busy in a C call take a moment to stop; the nanny's "killing" notes are noise.
        logging.getLogger("distributed").setLevel(logging.ERROR)
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _named(fn: Any, rest: Sequence[Any]) -> dict[str, Any]:
    names = {scan_task: ("staging",), unit_task: ("staging", "out")}[fn]
    return dict(zip(names, rest, strict=True))
