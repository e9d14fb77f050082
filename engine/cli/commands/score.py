"""`flowtriage score FILE... -o OUT [--all] [--model M]`: batch-score dumps to a file."""

from __future__ import annotations

import argparse

import polars as pl

from engine.cli.commands.support import (
    add_model_option,
    add_quiet_option,
    refuse_no_flows,
    scored_run,
)
from engine.cli.console import inert, say, stderr_console
from engine.config.settings import Config
from engine.core.output import FORMATS, FrameWriter, check_output
from engine.core.schema import SCORED_SCHEMA
from engine.detect.incidents import IncidentTracker


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "score",
        parents=[common],
        help="score dumps and write the suspicious flows (or all) to a file",
        description="Score nfdump text dumps (files or directories, read in name order with "
        "window context carried across rotations) and write the canonical columns plus "
        "score, verdict, reasons and incident (the id of the flow's incident, see "
        "`flowtriage incidents`; empty for flows in none).",
    )
    parser.add_argument("paths", nargs="+", metavar="FILE", help="dump files or directories")
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT", help=f"output file: {', '.join(FORMATS)}"
    )
    parser.add_argument(
        "--all", action="store_true", help="keep every flow, not only score >= [model] threshold"
    )
    add_model_option(parser)
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    console = stderr_console(quiet=args.quiet)
    if args.output:
        check_output(args.output)
    run_ = scored_run(args, config, console, analyst_labels=True)
    threshold = run_.threshold
    # the incident of each flagged flow, as `flowtriage incidents` groups them
    tracker = IncidentTracker(threshold)
    total = flagged = skipped = 0
    per_file: dict[object, list[int]] = {}  # a big file comes in chunks: one line per file
    # each chunk is written as it is scored: memory follows the chunk, not the input
    with FrameWriter(args.output, {**SCORED_SCHEMA, "incident": pl.String()}) as out:
        for item, scored in run_.items:
            ids, _events = tracker.add(scored)
            scored = scored.with_columns(ids)
            suspicious = scored.filter(pl.col("score") >= threshold)
            out.append(scored if args.all else suspicious)
            total += scored.height
            flagged += suspicious.height
            skipped += len(item.skipped)
            counts = per_file.setdefault(item.path, [0, 0, 0])
            counts[0] += scored.height
            counts[1] += suspicious.height
            counts[2] += len(item.skipped)
            if item.last:
                n, s, k = per_file.pop(item.path)
                say(
                    console,
                    f"{inert(item.path.name)}: {n} flows, {s} suspicious"
                    + (f", {k} lines skipped" if k else ""),
                )
        refuse_no_flows(run_.paths, total, skipped)  # inside: the writer drops its output
    say(
        console,
        f"{total} flows in {len(run_.paths)} file(s), {flagged} at score >= {threshold:g}; "
        f"wrote {out.rows} rows to {inert(args.output)} (model {inert(run_.model.name)})",
    )
    return 0
