"""Backfill on Spark: the JVM reads the bytes, Python workers run engine.batch.backfill's
functions, Spark writes the partitions.

- scan: `binaryFile` rows (local, hdfs://, s3a://: whatever Hadoop reads) go through
  `mapInArrow` to `scan_bytes`; flows and a stats row per file are staged as one Parquet
  dataset under OUT/_backfill/staging.
- score: the driver's history routes (target file, source file, since) become a small
  broadcast table joined to the staged flows, so each target file's group holds exactly its
  own rows and the history rows iter_flows would give it; `groupBy(target).applyInArrow` runs
  `score_file`. Partitions are written in waves with dynamic partition overwrite, and each
  wave's done markers only after Spark committed it.
- the model goes to executors as skops bytes in a broadcast and is loaded there with the
  allow-list and hash check of engine.models.store; no Detector is ever pickled into a task.

Arrow crossings: timestamps travel as int64 milliseconds (Spark refuses polars' ms
timestamps; written output is microsecond TimestampNTZ, read back by read_output), and
strings as `string`, not polars' `large_string` (applyInArrow rejects it).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import polars as pl

try:  # the [spark] extra brings it; importing this module without it must still work
    import pyarrow as pa
except ImportError:  # pragma: no cover
    pa = None

from engine.batch.backfill import (
    META_DIR,
    SCAN_DIR,
    STAGING_DIR,
    FileStat,
    InputFile,
    Store,
    TaskContext,
    Unit,
    exporter_name,
    file_key,
    history_rows,
    list_local,
    order_inputs,
    scan_bytes,
    score_file,
)
from engine.batch.engines import WORKER_ENV
from engine.core.dumpfiles import is_dump
from engine.core.errors import UserError
from engine.core.schema import FLOW_SCHEMA, SCORED_SCHEMA

WAVE_PARTITIONS = 16  # partitions per Spark job: the grain of a resumed run
_TS = ("ts_first", "ts_last")
_SPARK_TYPES = {
    pl.Datetime: "bigint", pl.Float64: "double", pl.String: "string", pl.Int32: "int",
    pl.Int16: "smallint", pl.Int64: "bigint", pl.Boolean: "boolean",
}


def _ddl(schema: dict[str, pl.DataType], *, ts: str = "bigint") -> str:
    parts = []
    for name, dtype in schema.items():
        kind = ts if name in _TS else _SPARK_TYPES[type(dtype)]
        parts.append(f"`{name}` {kind}")
    return ", ".join(parts)


STAGED_DDL = _ddl(FLOW_SCHEMA) + ", `key` string, `rowid` bigint, `stat` string"
SCORED_DDL = _ddl(SCORED_SCHEMA, ts="timestamp_ntz") + ", `exporter` string, `day` string"


def _to_arrow(frame: pl.DataFrame) -> Any:
    """polars -> Arrow as Spark takes it: no large_string / large_list."""
    table = frame.to_arrow()
    fields = [
        pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def _staged_arrow(flows: pl.DataFrame, key: str, stat: str | None) -> Any:
    frame = flows.with_columns(
        *(pl.col(c).dt.epoch("ms") for c in _TS),
        key=pl.lit(key, pl.String),
        rowid=pl.int_range(pl.len(), dtype=pl.Int64),
        stat=pl.lit(stat, pl.String),
    )
    return _to_arrow(frame)


def _scan_partition(
    timezone: str, sources: dict[str, InputFile], batches: Iterator[Any]
) -> Iterator[Any]:
    """mapInArrow: binaryFile rows (path, content) -> staged flows, then one stats row each."""
    # The stats row: null flow columns, the FileStat as JSON in `stat`.
    nulls = pl.DataFrame({name: [None] for name in FLOW_SCHEMA}, schema=FLOW_SCHEMA)
    for batch in batches:
        paths = batch.column("path").to_pylist()
        contents = batch.column("content")
        for i, path in enumerate(paths):
            source = sources[path]
            flows, stat = scan_bytes(contents[i].as_py(), source=source, timezone=timezone)
            for table in (_staged_arrow(flows, stat.key, None),
                          _staged_arrow(nulls, stat.key, stat.to_json())):
                yield from table.to_batches()


def _score_group(shipped: Any, table: Any) -> Any:
    """applyInArrow: one target file's own rows and routed history -> its scored rows.
    `shipped` is a Broadcast of the TaskContext (model bytes, rules, zone)."""
    ctx: TaskContext = shipped.value
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if not frame.height:
        return _to_arrow(pl.DataFrame(schema=_scored_out_schema()))
    target = frame["target"][0]
    exporter = frame["target_exporter"][0]
    # Rotation order of the sources, then line order: exactly iter_flows' history order.
    frame = frame.sort(["source_order", "rowid"]).with_columns(
        *(pl.from_epoch(pl.col(c), time_unit="ms") for c in _TS)
    )
    own = frame.filter(pl.col("key") == target).select(list(FLOW_SCHEMA))
    history = history_rows([(frame.filter(pl.col("key") != target).select(list(FLOW_SCHEMA)),
                             -(2**62))])
    scored = score_file(own, history, ctx)
    out = scored.with_columns(
        *(pl.col(c).dt.cast_time_unit("us") for c in _TS), exporter=pl.lit(exporter, pl.String)
    ).select(list(_scored_out_schema()))
    return _to_arrow(out)


def _group_fn(shipped: Any) -> Any:
    # pyspark 4.x picks applyInArrow's calling convention from type hints (a partial has
    # none, and it then fails): a small annotated closure.
    def score_group(table: pa.Table) -> pa.Table:
        return _score_group(shipped, table)

    return score_group


def _scored_out_schema() -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = dict(SCORED_SCHEMA)
    for c in _TS:
        schema[c] = pl.Datetime("us")
    return {**schema, "exporter": pl.String(), "day": pl.String()}


class HadoopStore(Store):
    """OUT's control files through Hadoop's FileSystem, so OUT may be hdfs:// or s3a://."""

    def __init__(self, spark: Any, root: str) -> None:
        super().__init__(root)
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _fs(self, path: str) -> tuple[Any, Any]:
        jpath = self._jvm.org.apache.hadoop.fs.Path(path)
        return jpath.getFileSystem(self._conf), jpath

    def exists(self, path: str) -> bool:
        fs, jpath = self._fs(path)
        return bool(fs.exists(jpath))

    def list_texts(self, directory: str) -> list[str]:
        fs, jpath = self._fs(directory)
        if not fs.exists(jpath):
            return []
        texts = []
        for status in sorted(fs.listStatus(jpath), key=lambda s: s.getPath().getName()):
            if status.isFile() and not status.getPath().getName().startswith("."):
                stream = fs.open(status.getPath())
                try:
                    texts.append(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
                finally:
                    stream.close()
        return texts

    def _write(self, path: str, text: str) -> None:
        fs, jpath = self._fs(path)
        stream = fs.create(jpath, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def log_scan(self, lines: Sequence[str]) -> None:
        # Object stores cannot append: each batch of stats is a file of its own.
        self._write(self.path(META_DIR, SCAN_DIR, f"{uuid.uuid4().hex}.jsonl"),
                    "".join(line + "\n" for line in lines))

    def touch(self, path: str) -> None:
        self._write(path, "")

    def delete(self, path: str) -> None:
        fs, jpath = self._fs(path)
        fs.delete(jpath, True)


def _is_uri(path: str) -> bool:
    return "://" in path or path.startswith("file:")


def _local_uri(path: str) -> str:
    # The form binaryFile reports a local file's path in (Hadoop's Path.toString).
    return "file:" + os.path.abspath(path)


class SparkEngine:
    name = "spark"

    def __init__(self, out: str, *, conf: dict[str, str] | None = None, spark: Any = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise UserError(
                "--engine spark needs PySpark: pip install 'flowtriage[spark]' (and Java 17)"
            ) from None
        conf = dict(conf or {})
        self._own = False
        if spark is None:
            spark = SparkSession.getActiveSession()
        if spark is None:
            # Python workers must run this environment's interpreter (with flowtriage in it).
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = SparkSession.builder.appName("flowtriage backfill")
            if "spark.master" not in conf and "PYSPARK_GATEWAY_PORT" not in os.environ:
                conf["spark.master"] = "local[*]"  # not under spark-submit: this machine
            for key, value in WORKER_ENV.items():
                conf.setdefault(f"spark.executorEnv.{key}", value)
            conf.setdefault("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
            conf.setdefault("spark.ui.showConsoleProgress", "false")
            for key, value in conf.items():
                builder = builder.config(key, value)
            spark = builder.getOrCreate()
            self._own = True
        elif conf:
            for key, value in conf.items():
                spark.conf.set(key, value)
        self.spark = spark
        self.out = out if _is_uri(out) else os.path.abspath(out)
        self.store = HadoopStore(spark, out if _is_uri(out) else _local_uri(out))
        self.staging = self.store.path(META_DIR, STAGING_DIR)
        self._uris: dict[str, str] = {}  # provenance path -> the URI binaryFile reports
        self._staged_seen: dict[str, bool] = {}

    # -- inputs ---------------------------------------------------------------------------------

    def list_inputs(self, inputs: Sequence[str], *, glob: str = "*") -> list[InputFile]:
        local = [p for p in inputs if not _is_uri(p)]
        found = list_local(local, glob=glob) if local else []
        for f in found:
            self._uris[f.path] = _local_uri(f.path)
        for uri in (p for p in inputs if _is_uri(p)):
            fs, jpath = self.store._fs(uri)
            if not fs.exists(jpath):
                raise UserError(f"{uri}: no such file or directory")
            files = fs.listFiles(jpath, True)
            while files.hasNext():
                status = files.next()
                path = status.getPath()
                if not is_dump(path.getName(), glob):
                    continue
                name = path.toString()
                parent = name.rsplit("/", 1)[0]
                found.append(InputFile(name, exporter_name(parent), int(status.getLen()),
                                       int(status.getModificationTime())))
                self._uris[name] = name
        if not found:
            raise UserError(f"no dump files in {', '.join(inputs)}")
        return order_inputs(found)

    # -- scan -----------------------------------------------------------------------------------

    def scan(self, files: Sequence[InputFile], ctx: TaskContext) -> Iterator[list[FileStat]]:
        if not files:
            return
        sources = {self._uris[f.path]: f for f in files}
        where = f"{self.staging}/{uuid.uuid4().hex}"
        reader = self.spark.read.format("binaryFile")
        frame = reader.load(list(sources))
        previous = self.spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
        # One file per Arrow batch into the scan: a batch holds whole files' bytes.
        self.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "1")
        try:
            staged = frame.mapInArrow(
                partial(_scan_partition, ctx.timezone, sources), STAGED_DDL
            )
            # by file: a wave then reads only the files it routes (partition pruning), not the
            # whole staged archive again
            staged.write.mode("overwrite").partitionBy("key").parquet(where)
        finally:
            self.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)
        rows = (self.spark.read.schema(STAGED_DDL).parquet(where).where("stat IS NOT NULL")
                .select("stat").collect())
        stats = {}
        for row in rows:
            stat = FileStat.from_json(row["stat"])
            stats[stat.path] = replace(stat, staged=where if stat.rows else None)
        self._staged_seen[where] = True
        missing = [f for f in files if f.path not in stats]
        for f in missing:  # binaryFile found nothing to read there (vanished, unreadable)
            stats[f.path] = FileStat(key=file_key(f.path), path=f.path, exporter=f.exporter,
                                     size=f.size, mtime=f.mtime, error="cannot read: not listed by Spark")
        yield [stats[f.path] for f in files]

    def staged_ok(self, stat: FileStat) -> bool:
        if stat.staged is None:
            return False
        if stat.staged not in self._staged_seen:
            self._staged_seen[stat.staged] = self.store.exists(stat.staged)
        return self._staged_seen[stat.staged]

    # -- score ----------------------------------------------------------------------------------

    def score(
        self, units: Sequence[Unit], stats: Sequence[FileStat], ctx: TaskContext
    ) -> Iterator[tuple[Unit, int]]:
        from pyspark.sql import functions as F

        order = {s.key: i for i, s in enumerate(stats)}
        # Bytes and plain data only: executors load the model themselves (worker_detector).
        shipped = self.spark.sparkContext.broadcast(ctx)
        staged_at = {s.key: s.staged for s in stats}
        for start in range(0, len(units), WAVE_PARTITIONS):
            wave = list(units[start : start + WAVE_PARTITIONS])
            routes: dict[tuple[str, str], tuple[str, str, int, int, str]] = {}
            for unit in wave:
                for stat, file_routes in zip(unit.files, unit.routes, strict=True):
                    if not stat.rows:
                        continue
                    routes[(stat.key, stat.key)] = (stat.key, stat.key, -(2**62), order[stat.key], stat.exporter)
                    for r in file_routes:
                        routes[(stat.key, r.source)] = (stat.key, r.source, r.since, order[r.source], stat.exporter)
            counts = {(u.exporter, u.day): 0 for u in wave}
            for unit in wave:  # whatever a killed attempt left there goes; the wave rewrites it
                self.store.delete(self._partition(unit))
            if routes:
                dirs = sorted({d for (_t, src) in routes if (d := staged_at[src]) is not None})
                table = self.spark.createDataFrame(
                    list(routes.values()),
                    "target string, source string, since bigint, source_order bigint, "
                    "target_exporter string",
                )
                keys = sorted({src for (_t, src) in routes})
                flows = (self.spark.read.schema(STAGED_DDL).parquet(*dirs)
                         .where(F.col("key").isin(keys)).where("stat IS NULL"))
                joined = flows.join(F.broadcast(table), flows.key == table.source).where(
                    F.col("ts_first") >= F.col("since")
                )
                scored = joined.groupBy("target").applyInArrow(_group_fn(shipped), SCORED_DDL)
                keep = self.spark.createDataFrame(list(counts), "exporter string, day string")
                result = scored.join(F.broadcast(keep), ["exporter", "day"]).select(
                    *SCORED_SCHEMA, "exporter", "day"
                )
                (result.write.mode("overwrite").option("partitionOverwriteMode", "dynamic")
                 .partitionBy("exporter", "day").parquet(self.out))
                there = [self._partition(u) for u in wave if self.store.exists(self._partition(u))]
                written = self.spark.read.option("basePath", self.store.root).parquet(*there)
                for row in written.groupBy("exporter", "day").count().collect():
                    counts[(row["exporter"], row["day"])] = int(row["count"])
            for unit in wave:
                yield unit, counts[(unit.exporter, unit.day)]

    def _partition(self, unit: Unit) -> str:
        return self.store.path(f"exporter={unit.exporter}", f"day={unit.day}")

    def drop_staging(self) -> None:
        self.store.delete(self.staging)

    def close(self) -> None:
        if self._own:
            self.spark.stop()

