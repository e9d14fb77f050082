"""`flowtriage eval PATH... --truth CSV [--model M] [--json] [-n N]`: judge a model."""

from __future__ import annotations

import argparse
import json

import polars as pl

from engine.cli.commands.support import add_model_option, add_quiet_option, scored_run
from engine.cli.console import inert, stderr_console
from engine.config.settings import Config
from engine.core.errors import UserError
from engine.detect.evaluate import evaluate, format_report
from engine.feedback.labelsfile import join_many, read_labels


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "eval",
        parents=[common],
        help="score dumps and compare with ground truth (confusion matrix, F1, ROC AUC, precision@n)",
        description="Score dumps with a model and compare verdicts and scores with a labels "
        "file. Flows the labels file does not mention are left out of every figure.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="dump files or directories")
    parser.add_argument(
        "--truth", required=True, action="append", metavar="CSV",
        help="labels file (CSV: label plus file,line or ts_first,src_addr,src_port,dst_addr,dst_port,proto; see README's Labels files); repeatable, a later file wins where two overlap",
    )
    add_model_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "-n", type=int, action="append", metavar="N",
        help="precision@N (repeatable; default 100 and 1000)",
    )
    add_quiet_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    console = stderr_console(quiet=args.quiet)
    extra = config.labels.extra_classes
    truth_labels = [read_labels(p, extra_classes=extra) for p in args.truth]
    run_ = scored_run(args, config, console, analyst_labels=False)
    paths, model, meta = run_.paths, run_.model, run_.meta
    truth, verdict, score = [], [], []
    for _, scored in run_.items:
        truth.append(join_many(scored, truth_labels))
        verdict.append(scored["verdict"])
        score.append(scored["score"])
    truth_all = pl.concat(truth)
    if truth_all.null_count() == truth_all.len():
        raise UserError(
            f"{', '.join(args.truth)}: no row matches a flow in {len(paths)} file(s); check the "
            "file names (dump name without directory or .gz) or the flow key columns"
        )
    report = evaluate(truth_all, pl.concat(verdict), pl.concat(score), n=tuple(args.n or (100, 1000)))
    # Files the model was trained on (its sidecar lists them) make these figures in-sample:
    # how well it remembers, not how well it detects; say so wherever they are printed.
    trained_on = set(meta.get("files") or ())
    seen = [p.name for p in paths if p.name in trained_on]
    if args.json:
        body = report.to_dict()
        body["in_sample_files"] = seen
        body["model"] = {"path": str(model), "version": meta.get("version"), "sha256": meta.get("sha256")}
        body["files"] = [p.name for p in paths]
        print(json.dumps(body, indent=2))
    else:
        print(f"model {inert(model)} (version {inert(meta.get('version') or '-')}), {len(paths)} file(s)")
        if seen:
            print(f"IN-SAMPLE: the model was trained on {len(seen)} of these {len(paths)} file(s) "
                  f"({inert(', '.join(seen[:3]))}{', ...' if len(seen) > 3 else ''}); these figures say "
                  "how well it remembers its training data, not how well it detects new traffic")
        print(format_report(report), end="")
    return 0
