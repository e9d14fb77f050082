"""`flowtriage train PATH... -o MODEL [--labels CSV] [--label-db DB]`: fit and save a model."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from engine.batch.plan import expand_paths, iter_flows, problem_line, skipped_summary
from engine.cli.commands.support import add_quiet_option
from engine.cli.console import file_progress, inert, say, stderr_console
from engine.config.settings import Config
from engine.core.errors import UserError
from engine.detect.evaluate import evaluate
from engine.detect.rules import RuleSet
from engine.feedback.labelsfile import join_many, read_labels
from engine.feedback.targets import TrainingLabels, analyst_labels, training_targets
from engine.models.store import save_model


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "train",
        parents=[common],
        help="train a model from rule labels, analyst labels and an optional labels file",
        description="Train a detector on dumps (files or directories). Labels, strongest "
        "first: analyst labels from the label store, the --labels file, the config's rules; "
        "other flows count as normal. Writes MODEL (skops) and MODEL.json beside it (its sidecar).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="dump files or directories")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write (.skops)")
    parser.add_argument(
        "--labels", action="append", metavar="CSV",
        help="labels file (CSV: label plus file,line or ts_first,src_addr,src_port,dst_addr,dst_port,proto; see README's Labels files); repeatable, a later file wins where two overlap",
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--label-db", metavar="DB", help="analyst label store (default: [labels] db in the config)"
    )
    store.add_argument("--no-label-db", action="store_true", help="ignore analyst labels")
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    console = stderr_console(quiet=args.quiet)
    out = Path(args.output)
    if out.suffix != ".skops":
        out = out.with_name(out.name + ".skops")
        say(console, f"writing {inert(out)} (model files end in .skops)")
    if not out.parent.is_dir():
        raise UserError(f"{out}: directory {out.parent} does not exist")
    paths = expand_paths(args.paths, glob=config.watch.glob)
    # Late (start-up time): the Detector imports scikit-learn, which `train --help` must not.
    from engine.detect.detector import Detector

    frames: dict[Path, list[pl.DataFrame]] = {}
    with file_progress(paths, console, enabled=not args.quiet) as advance:
        for item in iter_flows(paths, timezone=config.ingest.timezone,
                               max_ratio=config.ingest.max_decompressed_ratio):
            frames.setdefault(item.path.parent, []).append(item.flows)
            for line in skipped_summary(item):
                say(console, line)
            warning = problem_line(item)
            if warning:
                say(console, warning)
            if item.last:
                advance(item.path)
    per_dir = [pl.concat(parts) for parts in frames.values()]
    flows = pl.concat(per_dir)
    if flows.height == 0:
        raise UserError(f"no flows in {len(paths)} file(s): nothing to train on")
    rules = RuleSet.from_config(config.rules)
    truth, analyst = label_sources(flows, config, args)
    origins = training_targets(
        flows, analyst=analyst, labels_file=truth, rules=rules,
        analyst_weight=config.labels.analyst_weight,
    )
    labels = origins.labels
    assert origins.weight is not None
    detector = Detector.from_config(config.model).use_config(config)
    # labels join on the flows as read; the model learns them laid apart in time
    detector.fit(pl.concat(apart_in_time(per_dir)), labels, sample_weight=origins.weight.to_numpy())
    metadata = _metadata(detector, flows, labels, origins, paths, args, rules)
    save_model(detector, out, metadata=metadata)
    _summary(out, metadata)
    return 0


def apart_in_time(frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Each directory is one exporter; two exporters whose flows overlap in time (the two
    shapes of one capture, say) must not share a feature window, or every packet counts
    twice. A directory that overlaps an earlier one moves forward by whole days (windows stay
    aligned) to after everything before it; the rest keep their times."""
    out: list[pl.DataFrame] = []
    spans: list[tuple[datetime, datetime]] = []
    end: datetime | None = None
    for frame in frames:
        if frame.height == 0:
            out.append(frame)
            continue
        lo, hi = _span(frame)
        overlaps = any(not (hi < o_lo or lo > o_hi) for o_lo, o_hi in spans)
        if overlaps and end is not None:
            shift = timedelta(days=(end - lo).days + 1)
            frame = frame.with_columns(pl.col("ts_first") + shift, pl.col("ts_last") + shift)
            lo, hi = _span(frame)
        out.append(frame)
        spans.append((lo, hi))
        end = hi if end is None or hi > end else end
    return out


def _span(frame: pl.DataFrame) -> tuple[datetime, datetime]:
    """The first ts_first and the last ts_last of a non-empty frame."""
    lo, hi = frame.select(pl.col("ts_first").min(), pl.col("ts_last").max()).row(0)
    return lo, hi


def label_sources(
    flows: pl.DataFrame, config: Config, args: argparse.Namespace
) -> tuple[pl.Series | None, pl.Series | None]:
    """Labels-file and analyst labels aligned with `flows` (None where there are none)."""
    from_file = None
    if args.labels:
        extra = config.labels.extra_classes
        from_file = join_many(flows, [read_labels(p, extra_classes=extra) for p in args.labels])
    analyst = None
    if not args.no_label_db:
        db = Path(args.label_db) if args.label_db else config.labels_db_path
        analyst = analyst_labels(flows, db, extra_classes=config.labels.extra_classes)
    return from_file, analyst


def _metadata(detector, flows, labels, origins: TrainingLabels, paths, args, rules) -> dict:
    scored = detector.score(flows, rules=rules)
    fit = evaluate(labels, scored["verdict"], scored["score"])
    start, end = flows["ts_first"].min(), flows["ts_last"].max()
    params = {k: v for k, v in vars(detector).items() if not k.endswith("_")}
    return {
        "version": str(detector.version_),
        "detector": type(detector).__name__,
        "params": params,
        "features": list(detector.feature_names_),
        "classes": [str(c) for c in detector.classes_],
        "threshold": float(detector.threshold),
        "training_window": {"start": str(start), "end": str(end)},
        "flows": flows.height,
        "files": [p.name for p in paths],
        "label_counts": dict(detector.label_counts_),
        "label_origins": origins.origin_counts(),
        "labels_files": [Path(p).name for p in args.labels or ()],
        "metrics": {
            "on": "training data (in-sample: an upper bound, not a test)",
            "macro_f1": fit.macro_f1,
            "accuracy": fit.accuracy,
            "roc_auc": fit.roc_auc,
            "normal_flagged": fit.normal_flagged,
            "per_class_f1": {c: m.f1 for c, m in fit.per_class.items()},
            **({"detector": detector.metrics_} if hasattr(detector, "metrics_") else {}),
        },
    }


def _summary(out: Path, meta: dict[str, Any]) -> None:
    window = meta["training_window"]
    by_count = sorted(meta["label_counts"].items(), key=lambda kv: (-kv[1], kv[0]))
    counts = ", ".join(f"{k} {v}" for k, v in by_count)
    origins = ", ".join(f"{k} {v}" for k, v in meta["label_origins"].items())
    print(f"model     {inert(out)}  (version {meta['version'] or '-'})")
    print(f"flows     {meta['flows']} from {len(meta['files'])} file(s)")
    print(f"window    {window['start']} .. {window['end']}")
    print(f"labels    {counts}")
    print(f"from      {origins}")
    print(f"in-sample macro-F1 {meta['metrics']['macro_f1']:.4f} (training data, not a test)")
