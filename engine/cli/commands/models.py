"""`flowtriage models list|use|diff`: the model versions, which one is current, and what a
swap would change on real dumps before it is made."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.batch.diff import flagged_by_class, verdict_changes
from engine.batch.plan import expand_paths
from engine.cli.console import inert, stderr_console
from engine.config.settings import Config
from engine.detect.rules import RuleSet
from engine.models.registry import all_versions, resolve, rollback
from engine.models.store import load_model


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "models", parents=[common], help="list model versions, make one current, or diff two",
        description="Model versions live in [labels] model_dir (written by retraining); the "
        "bundled model is version 0. `use` makes a version current (a restarted watch loads "
        "it); `diff A B DUMPS...` scores the dumps with both and shows how verdicts change.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="every version, the current one marked")
    use = actions.add_parser("use", parents=[common], help="make a version current")
    use.add_argument("version", metavar="VERSION", help="'bundled' (or 0), a version name or prefix")
    diff = actions.add_parser("diff", parents=[common], help="how verdicts change from A to B")
    diff.add_argument("a", metavar="A", help="'current', 'bundled', a version, or a .skops path")
    diff.add_argument("b", metavar="B", help="the same, for the model to compare with A")
    diff.add_argument("paths", nargs="+", metavar="DUMP", help="dumps or directories of dumps")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    out = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
    if args.action == "list":
        return _list(config, out)
    if args.action == "use":
        path, _ = rollback(config.model_dir_path, args.version)
        out.print(Text(f"current model: {inert(path.name)} (a restarted watch loads it)"))
        return 0
    return _diff(args, config, out)


def _list(config: Config, out: Console) -> int:
    """One line per version (plain text: greppable, never cut to the terminal's width)."""
    found = all_versions(config.model_dir_path)
    width = max(len(v.name) for v in found)
    for version in found:
        meta = version.metadata or {}
        counts = meta.get("label_counts") or {}
        window = meta.get("training_window") or {}
        labels = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
        out.print(Text(
            f"{'*' if version.current else ' '} {inert(version.name):<{width}}  "
            f"flows {meta.get('flows', '?')}  trained on {window.get('start', '?')} .. "
            f"{window.get('end', '?')}  labels {inert(labels)}"
        ))
    out.print(Text(f"* current; versions in {inert(config.model_dir_path)}"))
    return 0


def _diff(args: argparse.Namespace, config: Config, out: Console) -> int:
    a_path = resolve(config, args.a)
    b_path = resolve(config, args.b)
    paths = expand_paths(args.paths, glob=config.watch.glob)
    err = stderr_console()
    err.print(Text(f"scoring {len(paths)} file(s) with {inert(a_path.name)} and {inert(b_path.name)}"))
    changes = verdict_changes(
        paths, load_model(a_path), load_model(b_path), timezone=config.ingest.timezone,
        rules=RuleSet.from_config(config.rules),
    )
    total = int(changes["flows"].sum())
    moved = changes.filter(changes["before"] != changes["after"])
    changed = int(moved["flows"].sum())
    share = changed / total if total else 0.0
    out.print(Text(f"{total} flows; {changed} ({share:.2%}) change verdict from A to B"))
    table = Table(box=None, pad_edge=False, header_style="bold", title="verdicts by class")
    for column in ("verdict", "A", "B", "change"):
        table.add_column(column, justify="right" if column != "verdict" else "left")
    for verdict, before, after, change in flagged_by_class(changes).iter_rows():
        table.add_row(Text(inert(verdict)), Text(str(before)), Text(str(after)), Text(f"{change:+d}"))
    out.print(table)
    if moved.height:
        moves = Table(box=None, pad_edge=False, header_style="bold", title="changes")
        for column in ("A says", "B says", "flows"):
            moves.add_column(column, justify="right" if column == "flows" else "left")
        for before, after, flows in moved.head(20).iter_rows():
            moves.add_row(Text(inert(before)), Text(inert(after)), Text(str(flows)))
        out.print(moves)
    return 0
