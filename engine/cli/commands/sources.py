"""`flowtriage sources PATH... [-o OUT] [--model M]`: who sends what, most suspicious first."""

from __future__ import annotations

import argparse

import polars as pl

from engine.cli.commands.support import add_model_option, add_quiet_option, scored_run
from engine.cli.console import inert, say, stderr_console
from engine.config.settings import Config
from engine.core.output import FORMATS, check_output, write_frame
from engine.detect.sources import summarize_sources

_SPARK = " ▁▂▃▄▅▆▇█"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "sources",
        parents=[common],
        help="per-source summary of scored dumps (flows, bytes, peers, ports, suspicion)",
        description="Score dumps and summarise per source address, most suspicious first.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="dump files or directories")
    parser.add_argument(
        "-o", "--output", metavar="OUT", help=f"write every source to a file ({', '.join(FORMATS)})"
    )
    parser.add_argument(
        "--top", type=int, default=20, metavar="N", help="sources printed to stdout (default 20)"
    )
    add_model_option(parser)
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    console = stderr_console(quiet=args.quiet)
    if args.output:
        check_output(args.output)
    run_ = scored_run(args, config, console, analyst_labels=True)
    frames = [scored for _, scored in run_.items]
    table = summarize_sources(pl.concat(frames), threshold=run_.threshold)
    if args.output:
        write_frame(table, args.output)
        say(console, f"wrote {table.height} sources to {inert(args.output)}")
    else:
        print(format_sources(table.head(max(args.top, 0))), end="")
        if table.height > args.top:
            say(console, f"{table.height - args.top} more source(s); -o FILE writes them all")
    return 0


def format_sources(table: pl.DataFrame) -> str:
    """Fixed-width plain text; addresses are untrusted input and printed inert."""
    width = max([6, *(len(inert(a)) for a in table["src_addr"])]) if table.height else 6
    head = (
        f"{'source':<{width}} {'flows':>7} {'dns':>7} {'bytes':>8} {'peers':>5} {'ports':>5} "
        f"{'susp':>5} {'verdict':<13} {'max':>5} {'first seen':<14} {'activity':<12}"
    )
    lines = [head]
    for row in table.iter_rows(named=True):
        lines.append(
            f"{inert(row['src_addr']):<{width}} {row['flows']:>7} {row['dns_flows']:>7} {_size(row['bytes']):>8} "
            f"{row['peers']:>5} {row['dst_ports']:>5} {row['suspicious_share']:>5.0%} "
            f"{inert(row['top_verdict'])[:13]:<13} {row['max_score']:>5.2f} "
            f"{row['first_seen']:%m-%d %H:%M:%S} {_sparkline(row['activity'])}"
        )
    return "\n".join(lines) + "\n"


def _size(count: int) -> str:
    n = float(count)
    for unit in ("", "K", "M", "G"):
        if n < 1000:
            return f"{n}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}T"


def _sparkline(counts: list[int]) -> str:
    top = max(counts) if counts else 0
    if not top:
        return ""
    return "".join(_SPARK[0 if c == 0 else 1 + (c * 7) // top] for c in counts)
