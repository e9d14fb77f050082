"""`flowtriage labels list|export|import`: the analysts' labels on the command line.

Export writes the labels-file format (README "Labels files") (`label`, `file, line`, the FLOW_KEY columns) plus
provenance (who, at, scope, note, model_version, verdict), so it joins back to flows on either
key set and moves labels between machines and into `eval --truth` / `train --labels`.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import polars as pl

from engine.core.errors import UserError
from engine.core.sanitize import inert
from engine.core.schema import FLOW_KEY, PROVENANCE_KEY
from engine.feedback.labelsfile import read_labels
from engine.feedback.labelstore import LabelStore

EXPORT_COLUMNS: tuple[str, ...] = (
    "label", *PROVENANCE_KEY, *FLOW_KEY, "scope", "who", "at", "note", "model_version", "verdict",
)
TS_FORMAT = "%Y-%m-%d %H:%M:%S%.3f"  # as nfdump prints ts_first
def inert_lines(text: str) -> str:
    return "\n".join(inert(line) for line in text.split("\n"))


def export_frame(current: pl.DataFrame) -> pl.DataFrame:
    return current.select(
        [
            pl.col("ts_first").dt.strftime(TS_FORMAT) if c == "ts_first" else pl.col(c)
            for c in EXPORT_COLUMNS
        ]
    )


def _table(frame: pl.DataFrame, columns: list[str]) -> str:
    # Columns no row fills (e.g. FLOW_KEY of labels imported by file+line) only add width.
    columns = [c for c in columns if frame[c].null_count() < frame.height]
    frame = frame.with_columns(pl.col("at").str.slice(0, 19).str.replace("T", " "))
    cells = [[inert(v) for v in row] for row in frame.select(columns).iter_rows()]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def run_list(args: argparse.Namespace, store: LabelStore) -> int:
    if args.all:
        frame = store.events().with_columns(
            pl.col("ts_first").cast(pl.Datetime("ms")).dt.strftime(TS_FORMAT)
        )
        columns = ["id", "kind", "target", "label", "scope", "file", "line", "src_addr",
                   "src_port", "dst_addr", "dst_port", "proto", "who", "at", "note"]
    else:
        frame = store.current().with_columns(pl.col("ts_first").dt.strftime(TS_FORMAT))
        columns = ["id", "label", "scope", "file", "line", "ts_first", "src_addr", "src_port",
                   "dst_addr", "dst_port", "proto", "verdict", "who", "at", "note"]
    if frame.height == 0:
        print(f"no labels in {inert(store.path)}")
        return 0
    print(_table(frame, columns))
    return 0


def run_export(args: argparse.Namespace, store: LabelStore) -> int:
    frame = export_frame(store.current())
    if args.output == "-":
        if sys.stdout.isatty():  # shown, not data: names and notes from dumps made inert
            sys.stdout.write(inert_lines(frame.write_csv()))
        else:
            frame.write_csv(sys.stdout)
    else:
        out = Path(args.output)
        tmp = out.with_name(out.name + ".tmp")
        frame.write_csv(tmp)
        tmp.replace(out)  # a reader never sees half a file
        print(f"exported {frame.height} labels to {inert(out)}", file=sys.stderr)
    return 0


def run_import(args: argparse.Namespace, store: LabelStore) -> int:
    frame = read_labels(
        args.file, vocabulary=store.vocabulary(), strict=False,
        warn=lambda line: print(inert(line), file=sys.stderr),
    )
    count = store.add_frame(frame, scope="flow")
    print(f"imported {count} labels from {inert(args.file)} into {inert(store.path)}")
    return 0


def run(args: argparse.Namespace, config) -> int:
    # list and export only read: they work on a read-only (or damaged) store
    store = LabelStore.from_config(config, read_only=args.action != "import")
    try:
        return {"list": run_list, "export": run_export, "import": run_import}[args.action](
            args, store
        )
    except sqlite3.Error as exc:  # a page found damaged while reading or writing
        raise UserError(f"{store.path}: the label store failed: {exc}") from None
    finally:
        store.close()


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "labels", parents=[common], help="list, export or import analysts' labels"
    )
    # --config is accepted before or after the action; SUPPRESS keeps the action's parser
    # from overwriting a value given before it with its own default.
    here = argparse.ArgumentParser(add_help=False)
    here.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                      help="configuration file (default: ./config.toml, then the user config dir)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[here], help="the effective labels")
    listing.add_argument("--all", action="store_true",
                         help="every event (labels, undos, notes), oldest first")
    export = actions.add_parser("export", parents=[here],
                                help="effective labels as a labels file (CSV)")
    export.add_argument("-o", "--output", required=True, metavar="CSV", help="'-' for stdout")
    importing = actions.add_parser("import", parents=[here],
                                   help="add the labels of a labels file (scope flow)")
    importing.add_argument("file", metavar="CSV")
    parser.set_defaults(func=run)
