"""What the batch commands share: the --model option, loading a detector, a scored run."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.text import Text

from engine.batch import expand_paths, file_progress, iter_scored, say, skipped_summary
from engine.config import Config
from engine.modelstore import (
    BUNDLED_MODEL,
    ModelRefused,
    load_model,
    read_metadata,
    version_warnings,
)
from engine.schema import SCORED_SCHEMA


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="MODEL",
        help="model file (.skops with its .json sidecar); default: [model] path in the "
        "config, else the bundled model",
    )


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or per-file lines on stderr"
    )


def model_path(args: argparse.Namespace, config: Config) -> Path:
    return Path(args.model or config.model.path or BUNDLED_MODEL)


def load_detector(
    args: argparse.Namespace, config: Config, console: Console | None = None
) -> tuple[Any, Path, dict[str, Any]]:
    """The detector named by --model / config / the bundled default, checked and loaded;
    library version differences from the training run are reported on `console`."""
    path = model_path(args, config)
    if path == BUNDLED_MODEL and not path.exists():
        raise ModelRefused(
            f"{path}: the bundled model is missing; train one with `flowtriage train` "
            "and pass it with --model"
        )
    detector = load_model(path)
    # Duck-typed so any Detector version qualifies; a bare sklearn estimator (which also has
    # a `score` method) does not.
    if not all(hasattr(detector, name) for name in ("score", "explain", "threshold")):
        raise ModelRefused(f"{path}: holds a {type(detector).__name__}, not a flowtriage detector")
    meta = read_metadata(path)
    if console is not None:
        for warning in version_warnings(meta):
            console.print(Text(f"warning: {path.name}: {warning}"))
    return detector, path, meta


def ruleset(config: Config) -> Any:
    """The configured rules, for rule names in `reasons` (and rule labels when training)."""
    from engine.rules import RuleSet

    return RuleSet.from_config(config.rules)


@dataclass
class ScoredRun:
    """The dumps a batch command was given, scored one by one in rotation order."""

    paths: list[Path]
    model: Path
    meta: dict
    items: Iterator[tuple[Any, pl.DataFrame]]  # (engine.batch.FileFlows, scored frame)


def scored_run(
    args: argparse.Namespace, config: Config, console: Console, *, analyst_labels: bool
) -> ScoredRun:
    """Expand the inputs, load the model, and score each dump with the minutes before it as
    history, showing progress and each file's skipped lines. With `analyst_labels` the label
    store's corrections are applied as the live view applies them (`score`, `sources`);
    without, the model's own verdicts are kept (`eval` judges the model)."""
    from engine.feedback import Suppressor

    paths = expand_paths(args.paths, glob=config.watch.glob)
    detector, model, meta = load_detector(args, config, console)
    suppressor = Suppressor.from_config(config) if analyst_labels else None

    def items() -> Iterator[tuple[Any, pl.DataFrame]]:
        with file_progress(paths, console, enabled=not args.quiet) as advance:
            for item, scored in iter_scored(
                paths, detector, timezone=config.ingest.timezone, rules=ruleset(config)
            ):
                if suppressor is not None and len(suppressor):
                    scored = suppressor.apply(scored, history=item.history).select(
                        list(SCORED_SCHEMA)
                    )
                yield item, scored
                for line in skipped_summary(item):
                    say(console, line)
                advance(item.path)

    return ScoredRun(paths, model, meta, items())
