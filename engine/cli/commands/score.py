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
from engine.core.output import FORMATS, check_output, write_frame
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
    kept: list[pl.DataFrame] = []
    total = flagged = skipped = 0
    for item, scored in run_.items:
        skipped += len(item.skipped)
        ids, _events = tracker.add(scored)
        scored = scored.with_columns(ids)
        suspicious = scored.filter(pl.col("score") >= threshold)
        kept.append(scored if args.all else suspicious)
        total += scored.height
        flagged += suspicious.height
        say(
            console,
            f"{inert(item.path.name)}: {scored.height} flows, {suspicious.height} suspicious"
            + (f", {len(item.skipped)} lines skipped" if item.skipped else ""),
        )
    refuse_no_flows(run_.paths, total, skipped)
    out = pl.concat(kept) if kept else pl.DataFrame(schema={**SCORED_SCHEMA, "incident": pl.String})
    write_frame(out, args.output)
    say(
        console,
        f"{total} flows in {len(run_.paths)} file(s), {flagged} at score >= {threshold:g}; "
        f"wrote {out.height} rows to {inert(args.output)} (model {inert(run_.model.name)})",
    )
    return 0
