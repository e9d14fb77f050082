"""`flowtriage backfill INPUT... --out DIR --engine local|dask|spark`: score an archive into
Parquet partitioned by exporter and day (engine.batch.backfill), resumably."""

from __future__ import annotations

import argparse
import hashlib
import time
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from engine.batch.backfill import FileStat, ModelShip, TaskContext, Unit, run_backfill
from engine.cli.commands.support import add_model_option, add_quiet_option
from engine.cli.console import inert, say, stderr_console
from engine.config.settings import Config
from engine.core.errors import UserError
from engine.ingest.timezones import resolve_zone
from engine.models.registry import load_detector

ENGINES = ("local", "dask", "spark")
_REMOTE = ("hdfs://", "s3a://", "s3://", "gs://", "abfs://", "abfss://", "viewfs://")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "backfill",
        parents=[common],
        help="score an archive into Parquet partitioned by exporter and day (local, Dask, Spark)",
        description="Score an archive of dumps (a directory per exporter, or a directory of "
        "them) into OUT/exporter=E/day=YYYY-MM-DD/*.parquet with the columns of `score --all`. "
        "Window context is carried across rotations exactly as `score` carries it; finished "
        "partitions are skipped when run again, so a killed run can simply be restarted.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="dump files or directories (hdfs:// and s3a:// with --engine spark)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="where the work runs (default: local, this process)")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="K=V",
                        help="Spark setting, repeatable (e.g. spark.master=yarn)")
    parser.add_argument("--dask-scheduler", metavar="ADDR",
                        help="Dask scheduler address (default: a LocalCluster of this machine)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="LocalCluster workers for --engine dask (default: one per core)")
    add_model_option(parser)
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def _spark_conf(pairs: list[str]) -> dict[str, str]:
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--spark-conf {pair!r}: expected KEY=VALUE")
        conf[key.strip()] = value
    return conf


def make_engine(args: argparse.Namespace) -> Any:
    remote = [p for p in args.inputs if p.startswith(_REMOTE)]
    if args.engine != "spark" and (remote or args.out.startswith(_REMOTE)):
        raise UserError(
            f"{(remote or [args.out])[0]}: cluster filesystems are read by Spark's JVM; "
            "use --engine spark"
        )
    if args.engine == "spark":
        from engine.batch.spark import SparkEngine

        return SparkEngine(args.out, conf=_spark_conf(args.spark_conf))
    if args.spark_conf:
        raise UserError("--spark-conf applies to --engine spark only")
    if args.engine == "dask":
        from engine.batch.engines import DaskEngine

        return DaskEngine(args.out, address=args.dask_scheduler, workers=args.workers)
    if args.dask_scheduler:
        raise UserError("--dask-scheduler applies to --engine dask only")
    from engine.batch.engines import LocalEngine

    return LocalEngine(args.out)


def run(args: argparse.Namespace, config: Config) -> int:
    console = stderr_console(quiet=args.quiet)
    # The model is checked and loaded here first (hash, allow-list, version warnings), then its
    # bytes are what the workers get.
    detector, model_path, meta = load_detector(
        config, args.model, lambda line: say(console, inert(line))
    )
    del detector
    data = model_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise UserError(f"{model_path}: changed while being read; run again")
    ctx = TaskContext(
        model=ModelShip(data, str(meta["sha256"]), str(model_path), config.model.threshold),
        rules=tuple(config.rules),
        timezone=resolve_zone(config.ingest.timezone),
    )
    started, cpu0 = time.monotonic(), time.process_time()
    engine = make_engine(args)
    try:
        files = engine.list_inputs(args.inputs, glob=config.watch.glob)
        progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(),
            TextColumn("{task.completed}/{task.total}", markup=False), TimeElapsedColumn(),
            console=console, transient=True,
            disable=args.quiet or not console.is_terminal,
        )
        with progress:
            scan_task = progress.add_task("scanning", total=len(files))
            unit_task = progress.add_task("partitions", total=None, visible=False)

            def report(event: str, detail: Any) -> None:
                if event == "scanned":
                    stat: FileStat = detail
                    progress.update(scan_task, advance=1, description=f"scanning {inert(stat.path.rsplit('/', 1)[-1])}")
                elif event == "planned":
                    total, pending = detail
                    progress.update(scan_task, visible=False)
                    progress.update(unit_task, total=pending, visible=True)
                    say(console, f"{total} partition(s), {total - pending} already done")
                elif event == "unit":
                    unit: Unit
                    unit, rows = detail
                    progress.update(unit_task, advance=1, description=inert(unit.name))
                    say(console, f"{inert(unit.name)}: {rows} flows")

            summary = run_backfill(files, engine, ctx, report=report)
    finally:
        engine.close()
    elapsed = time.monotonic() - started
    for stat in summary.with_skipped_lines:
        say(console, f"  {stat.skipped} line(s) skipped in {inert(stat.path)}")
        for line, reason, text in stat.skipped_head:
            say(console, f"    line {line}: {inert(reason)}: {inert(text)}")
    for stat in summary.failed:
        say(console, f"error: {inert(stat.path)}: {inert(stat.error or '')} (not scored)")
    if summary.held:
        say(console, f"{len(summary.held)} partition(s) written but left open because a file "
            "failed; run the same command again once it reads: "
            + ", ".join(inert(f"exporter={e}/day={d}") for e, d in summary.held[:5]))
    rate = summary.rows_written / elapsed if elapsed > 0 else 0.0
    say(
        console,
        f"{summary.flows} flows in {summary.files} file(s) ({summary.scanned} scanned now); "
        f"{summary.written} partition(s) written ({summary.rows_written} rows), "
        f"{summary.skipped_partitions} already done; {len(summary.failed)} file(s) failed; "
        f"{elapsed:.1f} s, {rate:,.0f} flows/s, driver CPU {time.process_time() - cpu0:.1f} s "
        f"(engine {engine.name}, model {inert(model_path.name)}) -> {inert(args.out)}",
    )
    return 1 if summary.failed else 0
