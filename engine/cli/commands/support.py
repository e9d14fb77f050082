"""What the batch commands share: the --model and --quiet options, a scored run with progress."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.text import Text

from engine.batch.plan import FileFlows, problem_line, skipped_summary
from engine.batch.run import ScoredRun
from engine.batch.run import scored_run as _scored_run
from engine.cli.console import file_progress, say, stderr_console
from engine.config.settings import Config
from engine.core.errors import UserError


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="MODEL",
        help="model file (.skops with its .json sidecar); default: [model] path in the "
        "config, else the model a retrain made current, else the bundled model",
    )


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or per-file lines on stderr"
    )


def scored_run(
    args: argparse.Namespace, config: Config, console: Console, *, analyst_labels: bool
) -> ScoredRun:
    """engine.batch.run.scored_run for a command: progress bar and each file's skipped lines
    on the stderr console, version warnings printed there."""

    def progress(
        paths: list[Path], items: Iterator[tuple[FileFlows, pl.DataFrame]]
    ) -> Iterator[tuple[FileFlows, pl.DataFrame]]:
        warnings = stderr_console()
        with file_progress(paths, console, enabled=not args.quiet) as advance:
            for item, scored in items:
                yield item, scored
                for line in skipped_summary(item):
                    say(console, line)
                warning = problem_line(item)
                if warning:  # shown with -q too: the output lacks flows it should have
                    say(warnings, warning)
                if item.last:
                    advance(item.path)

    return _scored_run(
        args.paths, config, model=args.model, analyst_labels=analyst_labels,
        warn=lambda line: console.print(Text(line)), wrap=progress,
    )


def refuse_no_flows(paths: list[Path], flows: int, skipped: int) -> None:
    """A run that read files but found not one flow in them (README.md in a dump directory,
    a binary nfcapd file) is a mistake to say, not an empty result to write with exit 0."""
    if flows == 0 and skipped > 0:
        names = ", ".join(p.name for p in paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        raise UserError(
            f"no flows in {names}: every one of {skipped:,} lines was skipped; are these nfdump "
            "text dumps (nfdump -r FILE -o extended > FILE.txt)?"
        )
