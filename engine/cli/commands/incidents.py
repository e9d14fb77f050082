"""`flowtriage incidents PATH... -o OUT [--flows FLOWS]`: the attack episodes in an archive.

The dumps are scored as `score` scores them, and the flagged flows grouped into incidents by
engine.detect.incidents (the same grouping the live view uses): one row per incident in OUT,
and, with --flows, every scored flow with the id of its incident (empty for flows in none).
"""

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
from engine.core.errors import UserError
from engine.core.output import FORMATS, check_output, write_frame
from engine.core.schema import SCORED_SCHEMA
from engine.detect.incidents import QUIET_SECONDS, IncidentTracker


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "incidents",
        parents=[common],
        help="group the flagged flows of dumps into incidents (attack episodes)",
        description="Score nfdump text dumps (files or directories, in rotation order) and "
        "group the flagged flows into incidents: one attack class around one address, closed "
        "after a quiet gap. OUT has one row per incident: incident (a stable id), class, state, "
        "first_seen, last_seen, flows, packets, bytes, max_score, peak_rate, peers, anchor, "
        "the addresses by role (attackers, victims, reflectors, resolvers, tunnel_endpoints) "
        "and per-minute activity.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="dump files or directories")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help=f"incidents file: {', '.join(FORMATS)}")
    parser.add_argument("--flows", metavar="FLOWS",
                        help="also write every scored flow with an `incident` column")
    parser.add_argument("--gap", type=float, default=QUIET_SECONDS, metavar="SECONDS",
                        help=f"an incident closes after this long without a flow (flow time; "
                        f"default {QUIET_SECONDS:g})")
    add_model_option(parser)
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    console = stderr_console(quiet=args.quiet)
    check_output(args.output)
    if args.flows:
        check_output(args.flows)
    if args.gap <= 0:
        raise UserError(f"--gap must be positive, got {args.gap:g}")
    run_ = scored_run(args, config, console, analyst_labels=True)
    tracker = IncidentTracker(run_.threshold, quiet_seconds=args.gap)
    kept: list[pl.DataFrame] = []
    total = skipped = 0
    for item, scored in run_.items:
        skipped += len(item.skipped)
        ids, _events = tracker.add(scored)
        total += scored.height
        if args.flows:
            kept.append(scored.with_columns(ids))
    refuse_no_flows(run_.paths, total, skipped)
    tracker.close_all()
    table = tracker.table()
    write_frame(table, args.output)
    if args.flows:
        flows = pl.concat(kept) if kept else pl.DataFrame(schema={**SCORED_SCHEMA, "incident": pl.String})
        write_frame(flows, args.flows)
    in_incidents = int(table["flows"].sum()) if table.height else 0
    say(console, f"{total} flows in {len(run_.paths)} file(s), {in_incidents} in {table.height} "
                 f"incident(s); wrote {inert(args.output)}"
                 + (f" and {inert(args.flows)}" if args.flows else "")
                 + f" (model {inert(run_.model.name)})")
    return 0
