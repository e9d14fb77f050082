"""`flowtriage parse FILE... -o OUT`: dumps -> canonical flow columns, one summary line per file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import polars as pl

from engine.core.errors import UserError
from engine.core.output import check_output, write_frame
from engine.core.schema import empty_flows
from engine.ingest import read_dump

SHOW_SKIPPED = 5


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "parse",
        parents=[common],
        help="read nfdump text dumps (any version/format) into canonical flow columns",
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="nfdump text dumps (.gz/.bz2/.xz/.zst ok)"
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file: .csv, .parquet or .jsonl (written atomically)",
    )
    parser.set_defaults(func=run)


def _check_inputs(files: list[str]) -> None:
    # Every input is checked before anything is written: no half-done output on a typo.
    for name in files:
        path = Path(name)
        if not path.exists():
            raise UserError(f"{name}: no such file")
        if path.is_dir():
            raise UserError(f"{name}: is a directory (give the dump files)")
        if not os.access(path, os.R_OK):
            raise UserError(f"{name}: not readable")


def run(args, config) -> int:
    out = check_output(args.output)
    _check_inputs(args.files)
    frames = []
    for name in args.files:
        try:
            result = read_dump(name, final=True, timezone=config.ingest.timezone)
        except OSError as exc:
            raise UserError(f"{name}: cannot read: {exc.strerror or exc}") from exc
        bad = result.bad_lines
        print(
            f"{name}: {result.flows.height} flows, {len(result.skipped)} skipped "
            f"({len(bad)} not header/trailer/blank), format {result.format or 'unknown'}",
            file=sys.stderr,
        )
        for skipped in bad[:SHOW_SKIPPED]:
            # repr() keeps control characters from the dump out of the terminal
            print(
                f"  {skipped.file}:{skipped.line}: {skipped.reason}: {skipped.text!r}",
                file=sys.stderr,
            )
        if len(bad) > SHOW_SKIPPED:
            print(f"  ... and {len(bad) - SHOW_SKIPPED} more", file=sys.stderr)
        frames.append(result.flows)
    flows = pl.concat(frames, rechunk=False) if frames else empty_flows()
    write_frame(flows, out)
    return 0
