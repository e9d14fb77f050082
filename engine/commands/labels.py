"""`flowtriage labels list|export|import`: the analysts' labels on the command line.

Export writes DESIGN.md's labels-file format (`label`, `file, line`, the FLOW_KEY columns) plus
provenance (who, at, scope, note, model_version, verdict), so it joins back to flows on either
key set and moves labels between machines and into `eval --truth` / `train --labels`.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import polars as pl

from engine.errors import UserError
from engine.labels import LabelStore
from engine.schema import FLOW_KEY, PROVENANCE_KEY

EXPORT_COLUMNS: tuple[str, ...] = (
    "label", *PROVENANCE_KEY, *FLOW_KEY, "scope", "who", "at", "note", "model_version", "verdict",
)
TS_FORMAT = "%Y-%m-%d %H:%M:%S%.3f"  # as nfdump prints ts_first
_TYPES: dict[str, pl.DataType] = {
    "line": pl.Int64(), "src_port": pl.Int32(), "dst_port": pl.Int32(), "score": pl.Float64(),
}
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides:
# anything a terminal could act on rather than print.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def inert(value: object) -> str:
    """Text from a dump or an analyst, safe to print: controls shown as \\xNN, not obeyed."""
    if value is None:
        return ""
    return _CONTROL.sub(_escape, str(value))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def export_frame(current: pl.DataFrame) -> pl.DataFrame:
    return current.select(
        [
            pl.col("ts_first").dt.strftime(TS_FORMAT) if c == "ts_first" else pl.col(c)
            for c in EXPORT_COLUMNS
        ]
    )


def read_labels_file(path: Path) -> pl.DataFrame:
    """A labels file (ours or any `label` + key-set CSV, optionally compressed), typed."""
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        raise UserError(f"{path}: not a readable CSV labels file: {exc}") from None
    has_provenance = set(PROVENANCE_KEY) <= set(raw.columns)
    has_key = set(FLOW_KEY) <= set(raw.columns)
    if "label" not in raw.columns or not (has_provenance or has_key):
        raise UserError(
            f"{path}: a labels file needs a 'label' column and either "
            f"{', '.join(PROVENANCE_KEY)} or {', '.join(FLOW_KEY)}"
        )
    casts = [pl.col(c).cast(t, strict=False) for c, t in _TYPES.items() if c in raw.columns]
    if "ts_first" in raw.columns:
        casts.append(
            pl.col("ts_first").str.strip_chars().str.to_datetime(
                TS_FORMAT, time_unit="ms", strict=False
            ).fill_null(
                pl.col("ts_first").str.to_datetime(time_unit="ms", strict=False)
            )
        )
    typed = raw.with_columns(casts).with_columns(
        pl.col("label").str.strip_chars(), (pl.int_range(pl.len()) + 2).alias("__row")
    )
    # A row whose value did not parse, or that has no complete key, is reported and skipped.
    lost = [
        pl.col(c).is_null() & raw[c].is_not_null() for c in (*_TYPES, "ts_first")
        if c in raw.columns
    ]
    keys = []
    if has_provenance:
        keys.append(pl.all_horizontal(pl.col(list(PROVENANCE_KEY)).is_not_null()))
    if has_key:
        keys.append(pl.all_horizontal(pl.col(list(FLOW_KEY)).is_not_null()))
    bad = pl.any_horizontal([*lost, pl.lit(False)]) | ~pl.any_horizontal(keys)
    bad = bad | pl.col("label").is_null() | (pl.col("label") == "")
    skipped = typed.filter(bad)
    for row in skipped.head(10).iter_rows(named=True):
        print(f"{path}:{row['__row']}: skipped: missing or unreadable label or key", file=sys.stderr)
    if skipped.height > 10:
        print(f"{path}: {skipped.height - 10} more rows skipped", file=sys.stderr)
    return typed.filter(~bad).drop("__row")


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
        frame.write_csv(sys.stdout)
    else:
        out = Path(args.output)
        tmp = out.with_name(out.name + ".tmp")
        frame.write_csv(tmp)
        tmp.replace(out)  # a reader never sees half a file
        print(f"exported {frame.height} labels to {inert(out)}", file=sys.stderr)
    return 0


def run_import(args: argparse.Namespace, store: LabelStore) -> int:
    frame = read_labels_file(Path(args.file))
    count = store.add_frame(frame, scope="flow")
    print(f"imported {count} labels from {inert(args.file)} into {inert(store.path)}")
    return 0


def run(args: argparse.Namespace, config) -> int:
    store = LabelStore.from_config(config)
    try:
        return {"list": run_list, "export": run_export, "import": run_import}[args.action](
            args, store
        )
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
