"""`flowtriage parse FILE... -o OUT`: dumps -> canonical flow columns, one summary line per file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from engine.core.errors import UserError
from engine.core.output import FrameWriter, check_output
from engine.core.sanitize import inert
from engine.core.schema import FLOW_SCHEMA
from engine.ingest.reader import iter_dump

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
        if not path.is_file():
            raise UserError(f"{name}: not a regular file (a FIFO or device is never read)")
        if not os.access(path, os.R_OK):
            raise UserError(f"{name}: not readable")


def run(args, config) -> int:
    out = check_output(args.output)
    _check_inputs(args.files)
    with FrameWriter(out, FLOW_SCHEMA) as writer:
        for name in args.files:
            _parse_one(name, config, writer)
    return 0


def _parse_one(name: str, config, writer: FrameWriter) -> None:
    """One dump, chunk by chunk into `writer` (memory follows the chunk, not the file)."""
    flows = skipped = 0
    bad: list = []
    bad_count = 0
    fmt = problem = None
    try:
        for result in iter_dump(name, final=True, timezone=config.ingest.timezone,
                                max_ratio=config.ingest.max_decompressed_ratio):
            writer.append(result.flows)
            flows += result.flows.height
            skipped += len(result.skipped)
            lines = result.bad_lines
            bad_count += len(lines)
            bad.extend(lines[: SHOW_SKIPPED - len(bad)])
            fmt = result.format or fmt
            problem = problem or result.problem
    except OSError as exc:
        raise UserError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    print(
        f"{inert(name)}: {flows} flows, {skipped} skipped "
        f"({bad_count} not header/trailer/blank), format {fmt or 'unknown'}",
        file=sys.stderr,
    )
    if problem:
        print(f"warning: {inert(name)}: {inert(problem)}", file=sys.stderr)
    for line in bad:
        # file names and dump text are shown inert: no control character reaches the terminal
        print(
            f"  {inert(line.file)}:{line.line}: {inert(line.reason)}: {inert(repr(line.text))}",
            file=sys.stderr,
        )
    if bad_count > SHOW_SKIPPED:
        print(f"  ... and {bad_count - SHOW_SKIPPED} more", file=sys.stderr)
