"""What the batch commands share: the --model option and loading a detector from it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from engine.config import Config
from engine.modelstore import (
    BUNDLED_MODEL,
    ModelRefused,
    load_model,
    read_metadata,
    version_warnings,
)


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
