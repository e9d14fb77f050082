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
from engine.detect.scope import OUT_REASON
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
    truth, verdict, score, dns, out = [], [], [], [], []
    for _, scored in run_.items:
        truth.append(join_many(scored, truth_labels))
        verdict.append(scored["verdict"])
        score.append(scored["score"])
        dns.append((scored["src_port"] == 53) | (scored["dst_port"] == 53))
        out.append(scored["reasons"].str.starts_with(OUT_REASON))
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
    extra_figures = _scope_figures(truth_all, pl.concat(verdict), pl.concat(dns), pl.concat(out), meta)
    if args.json:
        body = report.to_dict() | extra_figures
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
        print(_format_scope_figures(extra_figures), end="")
    return 0


def _scope_figures(truth: pl.Series, verdict: pl.Series, dns: pl.Series, out: pl.Series, meta: dict) -> dict:
    """Normal flows flagged on port 53 and elsewhere, the scope counts, and what the model's
    calibration says about real benign traffic it was not trained on."""
    frame = pl.DataFrame({"truth": truth, "verdict": verdict, "dns": dns, "out": out})
    normal = frame.filter(pl.col("truth") == "normal")
    figures: dict = {"scope": {"in_scope": int((~frame["out"]).sum()), "out_of_scope": int(frame["out"].sum())}}
    for name, part in (("port53", normal.filter(pl.col("dns"))), ("other", normal.filter(~pl.col("dns")))):
        flagged = int((part["verdict"] != "normal").sum())
        figures[f"normal_flagged_{name}"] = {"flagged": flagged, "of": part.height}
    calibration = meta.get("calibration")
    if calibration:
        figures["calibration"] = calibration
    return figures


def _format_scope_figures(fig: dict) -> str:
    lines = [
        f"scope: {fig['scope']['in_scope']} flows DNS-relevant, {fig['scope']['out_of_scope']} out of "
        "scope (read and used as context, no DNS verdict)",
    ]
    for name, label in (("port53", "port 53"), ("other", "other")):
        f = fig[f"normal_flagged_{name}"]
        share = f"{f['flagged'] / f['of']:.2%}" if f["of"] else "-"
        lines.append(f"normal flows flagged, {label}: {share} ({f['flagged']} of {f['of']})")
    cal = fig.get("calibration")
    if cal:
        per = ", ".join(f"{inert(k)} {v:.2%}" for k, v in sorted(cal.get("per_source_share_flagged", {}).items()))
        cuts = cal.get("raw_score_at_threshold", {})
        cuts_text = (", ".join(f"{inert(k)} {v:.3f}" for k, v in sorted(cuts.items())) if isinstance(cuts, dict)
                     else f"{float(cuts):.3f}")
        lines.append(
            f"threshold calibrated on real benign traffic the model did not train on: target at most "
            f"{cal.get('target_share_flagged', 0):.1%} of each source's port-53 flows flagged; out of "
            f"fold: {per or '-'} (raw-score cuts: {cuts_text or 'none needed'})"
        )
    else:
        lines.append("threshold not calibrated on real benign traffic (no calibration in the model's sidecar)")
    return "\n".join(lines) + "\n"
