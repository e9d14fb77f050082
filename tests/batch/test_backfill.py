"""Backfill: the plan's history routes equal what one process carries, and every engine writes
what `score --all` gives (verdicts and reasons exactly), resumably, a bad file reported.

Spark (local[2], one session for the module) and Dask (a LocalCluster) run for real; they skip
only where their extra is not installed, and CI sets FLOWTRIAGE_REQUIRE_ENGINES so that a skip
there is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from engine.batch.backfill import (
    META_DIR,
    ModelShip,
    TaskContext,
    history_rows,
    list_local,
    route_history,
    run_backfill,
    scan_bytes,
)
from engine.batch.engines import LocalEngine
from engine.batch.plan import iter_flows
from engine.config.settings import Config
from engine.ingest.timezones import resolve_zone
from engine.models.store import BUNDLED_MODEL, read_metadata
from tests.batch.backfill_support import assert_same, build_archive, expected, output

ROOT = Path(__file__).resolve().parents[2]


def _engine_or_skip(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("FLOWTRIAGE_REQUIRE_ENGINES"):
            raise
        pytest.skip(f"needs the [{extra}] extra")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def inputs(archive) -> list[Path]:
    return [archive / "rtr", archive / "pcap"]


@pytest.fixture(scope="module")
def want(inputs) -> pl.DataFrame:
    return expected(inputs)


@pytest.fixture(scope="module")
def ctx() -> TaskContext:
    config = Config()
    sha = read_metadata(BUNDLED_MODEL)["sha256"]
    return TaskContext(
        ModelShip(BUNDLED_MODEL.read_bytes(), sha, str(BUNDLED_MODEL)),
        tuple(config.rules), resolve_zone(config.ingest.timezone),
    )


def test_the_archive_spans_rotations_midnight_and_codecs(archive, want):
    names = sorted(p.name for p in archive.rglob("nfcapd.*"))
    assert any(n.endswith(".gz") for n in names) and any(n.endswith(".zst") for n in names)
    assert any(n.endswith(".txt") for n in names)
    # one routerlike file holds flows of both days
    spanning = want.filter(pl.col("exporter") == "rtr").group_by("file").agg(
        pl.col("day").n_unique()
    )
    assert spanning["day"].max() == 2


def test_routes_give_exactly_the_history_one_process_carries(inputs):
    files = list_local(inputs)
    scanned = [scan_bytes(Path(f.path).read_bytes(), source=f, timezone="UTC") for f in files]
    flows = {stat.key: frame for frame, stat in scanned}
    routes = route_history([stat for _frame, stat in scanned])
    by_exporter: dict[str, list[Path]] = {}
    for f in files:
        by_exporter.setdefault(f.exporter, []).append(Path(f.path))
    carried = {}
    for paths in by_exporter.values():
        for item in iter_flows(paths, timezone="UTC"):
            carried[str(item.path)] = item.history
    for _frame, stat in scanned:
        routed = history_rows((flows[r.source], r.since) for r in routes[stat.key])
        assert routed.equals(carried[stat.path]), stat.path
    # the routerlike rotations reach back more than one file for some of them
    assert any(len(r) >= 2 for r in routes.values())


def test_local_backfill_equals_score_all(inputs, want, ctx, tmp_path):
    out = tmp_path / "out"
    summary = run_backfill(list_local(inputs), LocalEngine(str(out)), ctx)
    assert summary.failed == [] and summary.written == 3 and summary.partitions == 3
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("exporter=*/day=*")) == [
        "exporter=pcap/day=2026-11-22", "exporter=rtr/day=2027-01-11",
        "exporter=rtr/day=2027-01-12",
    ]
    got = output(out)
    assert_same(got, want)
    assert not (out / META_DIR / "staging").exists()  # cleaned once nothing is left to resume
    # run again: every partition is done, nothing is scanned or written
    again = run_backfill(list_local(inputs), LocalEngine(str(out)), ctx)
    assert (again.scanned, again.written, again.skipped_partitions) == (0, 0, 3)
    assert_same(output(out), want)


def test_dask_backfill_equals_local(inputs, want, ctx, tmp_path):
    _engine_or_skip("dask.distributed", "dask")
    from engine.batch.engines import DaskEngine

    engine = DaskEngine(str(tmp_path / "out"), workers=2)
    try:
        summary = run_backfill(list_local(inputs), engine, ctx)
    finally:
        engine.close()
    assert summary.failed == [] and summary.written == 3
    assert_same(output(tmp_path / "out"), want)


@pytest.fixture(scope="module")
def spark():
    _engine_or_skip("pyspark", "spark")
    from engine.batch.engines import WORKER_ENV

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("flowtriage tests")
    for key, value in {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        **{f"spark.executorEnv.{k}": v for k, v in WORKER_ENV.items()},
    }.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()


def test_spark_backfill_equals_local_and_reads_uris(archive, inputs, want, ctx, spark, tmp_path):
    from engine.batch.spark import SparkEngine

    engine = SparkEngine(str(tmp_path / "out"), spark=spark)
    # one exporter by local path, one by URI (listed and read by the JVM, as hdfs:// would be)
    uri = "file://" + str(archive / "pcap")
    files = engine.list_inputs([str(archive / "rtr"), uri])
    summary = run_backfill(files, engine, ctx)
    assert summary.failed == [] and summary.written == 3
    got = output(tmp_path / "out")
    local_pcap = str(archive / "pcap")
    assert got.filter(pl.col("exporter") == "pcap")["file"].str.starts_with("file:/").all()
    got = got.with_columns(pl.col("file").str.replace(r"^file:/+", "/"))
    assert local_pcap.startswith("/")
    assert_same(got.sort(["exporter", "file", "line"]), want)


def _backfill(archive: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "backfill", str(archive / "rtr"), str(archive / "pcap"),
         "--out", str(out), "--engine", "local", "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["scan", "score"])
def test_a_killed_backfill_resumed_equals_an_unbroken_one(archive, want, tmp_path, stage):
    out = tmp_path / "out"
    proc = _backfill(archive, out)
    scan_log = out / META_DIR / "scan" / "local.jsonl"
    done = out / META_DIR / "done"

    def reached() -> bool:
        if stage == "scan":
            return scan_log.exists() and len(scan_log.read_text().splitlines()) >= 3
        return any(done.rglob("day=*"))

    deadline = time.monotonic() + 120
    while not reached() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / META_DIR / "done").exists() or len(list(done.rglob("day=*"))) < 3
    resumed = _backfill(archive, out)
    _stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert_same(output(out), want)
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_a_bad_file_is_reported_and_the_rest_finished_then_picked_up(archive, ctx, tmp_path):
    src = tmp_path / "in"
    shutil.copytree(archive, src)
    rtr = sorted((src / "rtr").iterdir())
    (src / "rtr" / "nfcapd.202701110139.bin").write_bytes(b"\x00\x01binary nfcapd, not text\n")
    vanishing = rtr[2]  # listed, then gone before it is read (as a file an NFS blip hides)
    files = list_local([src / "rtr", src / "pcap"])
    kept = vanishing.read_bytes()
    vanishing.unlink()
    out = tmp_path / "out"
    summary = run_backfill(files, LocalEngine(str(out)), ctx)
    assert [Path(s.path).name for s in summary.failed] == [vanishing.name]
    assert "cannot read" in (summary.failed[0].error or "")
    garbage = [s for s in summary.with_skipped_lines if s.path.endswith(".bin")]
    assert garbage and garbage[0].rows == 0 and garbage[0].skipped_head[0][0] == 1
    # nothing lost: every other file is scored as one process scores the archive without it
    without = expected([src / "rtr", src / "pcap"])
    assert_same(output(out), without)
    # the partitions it may change are written but left open (its own day, and the next one,
    # whose first files would take its flows as history); once it reads, a rerun redoes them
    assert summary.held == [("rtr", "2027-01-11"), ("rtr", "2027-01-12")]
    vanishing.write_bytes(kept)
    again = run_backfill(list_local([src / "rtr", src / "pcap"]), LocalEngine(str(out)), ctx)
    assert again.failed == [] and again.written == 2
    assert_same(output(out), expected([src / "rtr", src / "pcap"]))


def test_workers_load_the_shipped_model_with_the_configured_threshold(ctx):
    from dataclasses import replace

    from engine.batch.backfill import worker_detector
    from engine.models.store import ModelRefused

    shipped = replace(ctx.model, threshold=0.93)
    assert worker_detector(shipped).threshold == 0.93
    assert worker_detector(ctx.model).threshold != 0.93  # the model's own, loaded apart
    # the bytes are checked against the sidecar's hash, as load_model checks a file
    bad = replace(ctx.model, data=ctx.model.data[:-1] + b"\0", sha256="0" * 64)
    with pytest.raises(ModelRefused, match="does not match its sidecar"):
        worker_detector(bad)
