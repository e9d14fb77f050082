"""Leave-one-source-out over every bundled corpus, lab and real, per exporter shape.

    python scripts/realeval.py                 # every corpus left out in turn
    python scripts/realeval.py --only real-wrccdc --only real-ctu-day008
    python scripts/realeval.py --shipped       # the shipped model on every corpus (no refits)
    python scripts/realeval.py --extra ISP=DIR  # also score a directory of dumps (all normal)

For each corpus C: a Detector with the shipped parameters is trained on every other trainable
corpus (both shapes, in scope only, the rest as context), then C is scored per shape. Reported
per shape: the share of C's normal port-53 flows and of its normal other flows flagged (any
verdict but normal), and per attack class the recall on its port-53 flows (verdict == class)
and the share given any attack verdict. Out-of-fold scores of the real benign corpora are kept
(`--oof FILE`) for choosing the threshold (scripts/train_default_model.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import (  # noqa: E402
    EVAL_ONLY,
    Segment,
    calibration_point,
    corpora,
    end_to_end,
    load_all,
    load_segment,
)

NORMAL = "normal"


def dns_expr() -> pl.Expr:
    return (pl.col("src_port") == 53) | (pl.col("dst_port") == 53)


def make_detector(**params):
    from engine.detect.detector import Detector

    return Detector(**params)


def summarise(name: str, shape: str, scored: pl.DataFrame) -> dict:
    d = scored.with_columns(dns=dns_expr(), flagged=pl.col("verdict") != NORMAL)
    normal = d.filter(pl.col("label") == NORMAL)
    res = {"source": name, "shape": shape, "flows": d.height}
    for part, sub in (("port53", normal.filter(pl.col("dns"))), ("other", normal.filter(~pl.col("dns")))):
        res[f"normal_{part}"] = sub.height
        res[f"flagged_{part}"] = int(sub["flagged"].sum())
    attacks = d.filter((pl.col("label") != NORMAL) & pl.col("dns"))
    res["classes"] = {}
    for cls in sorted(attacks["label"].unique().to_list()):
        sub = attacks.filter(pl.col("label") == cls)
        res["classes"][cls] = {
            "n": sub.height,
            "caught": int((sub["verdict"] == cls).sum()),
            "any": int(sub["flagged"].sum()),
            "verdicts": dict(sub["verdict"].value_counts().iter_rows()),
        }
    return res


def line(res: dict) -> str:
    def share(a, b):
        return f"{a}/{b} ({100 * a / b:.2f}%)" if b else "-"

    text = (f"{res['source']:<26}{res['shape']:<11} port-53 normal flagged {share(res['flagged_port53'], res['normal_port53']):>20}"
            f"  other {share(res['flagged_other'], res['normal_other']):>20}")
    for cls, c in res["classes"].items():
        text += f"  {cls} recall {c['caught']}/{c['n']} ({c['caught'] / c['n']:.2f}) any {c['any']}/{c['n']}"
    return text


def main() -> int:

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", help="leave out only these corpora (repeatable)")
    ap.add_argument("--shipped", action="store_true", help="score every corpus with the shipped model")
    ap.add_argument("--model", help="with --shipped: this model file")
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=DIR",
                    help="also score this directory of extended dumps, every flow normal")
    ap.add_argument("--oof", type=Path, help="write out-of-fold scores of normal flows here (parquet)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--threshold", type=float, help="override the detector's threshold when scoring")
    ap.add_argument("--calibrate-from", type=Path, metavar="OOF",
                    help="set each left-out source's calibration point from these out-of-fold raw "
                    "scores of the other real benign sources (scripts/corpora.py calibration_point)")
    ap.add_argument("--report", type=Path, metavar="OOF",
                    help="no fits: print the figures of an --oof file at each source's calibration point "
                    "(chosen from the other real benign sources' out-of-fold scores)")
    ap.add_argument("--no-scope", action="store_true", help="score every flow (today's behaviour)")
    args = ap.parse_args()
    if args.report:
        return report(pl.read_parquet(args.report), args.json)
    scope = None if args.no_scope else {"filter": "port 53", "icmp_errors": True, "prober_targets": 3}
    segments = load_all()
    for item in args.extra:
        name, directory = item.split("=", 1)
        seg = load_segment(name, "", Path(directory))
        if seg is None:
            files = sorted(Path(directory).glob("*"))
            from engine.ingest import read_flows

            flows, _ = read_flows(files, timezone="UTC")
            seg = Segment(name, "routerlike", flows.with_columns(label=pl.lit(NORMAL)), files)
        seg.shape = "routerlike"
        segments.append(seg)
    results, oof = [], []
    names = sorted({s.corpus for s in segments})
    held_out = [n for n in names if not args.only or n in args.only]
    for name in held_out:
        test = [s for s in segments if s.corpus == name]
        t0 = time.perf_counter()
        if args.shipped:
            detector = _shipped(args.model)
            detector.scope = scope
        else:
            train = [s for s in segments if s.corpus != name and s.corpus in corpora() and s.corpus not in EVAL_ONLY]
            frame = pl.concat(end_to_end([s.flows for s in train]), how="vertical_relaxed")
            detector = make_detector(scope=scope).fit(frame.drop("label"), frame["label"])
        if args.calibrate_from and not args.shipped:
            detector.calibration, _ = calibration_point(pl.read_parquet(args.calibrate_from), exclude=name)
        if args.threshold is not None:
            detector.threshold = args.threshold
            detector.calibration = None
        for seg in test:
            scored = detector.score(seg.flows.drop("label")).with_columns(label=seg.flows["label"])
            res = summarise(name, seg.shape, scored)
            res["seconds"] = round(time.perf_counter() - t0, 1)
            res["calibration"] = getattr(detector, "calibration", None)
            results.append(res)
            print(line(res), flush=True)
            oof.append(scored.select("score", "verdict", "label", "reasons", dns=dns_expr(),
                                     source=pl.lit(name), shape=pl.lit(seg.shape)))
    if args.oof:
        pl.concat(oof).write_parquet(args.oof)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def report(oof: pl.DataFrame, out: Path | None) -> int:
    """Per source and shape, at the calibration point chosen without that source: a flow is
    flagged when its raw score reaches the point (or it is an anomaly), caught when it is also
    its class."""
    results = []
    for (name,), part in oof.sort("source").group_by("source", maintain_order=True):
        point, _per = calibration_point(oof, exclude=str(name))
        for (shape,), seg in part.group_by("shape", maintain_order=True):
            cut = pl.col("reasons").str.extract(r"clf:(\w+) ").replace_strict(point, default=0.5, return_dtype=pl.Float64)
            flagged = (pl.col("verdict") == "anomaly") | ((pl.col("verdict") != NORMAL) & (pl.col("score") >= cut))
            scored = seg.with_columns(verdict=pl.when(flagged).then(pl.col("verdict")).otherwise(pl.lit(NORMAL)),
                                      src_port=pl.when(pl.col("dns")).then(53).otherwise(0), dst_port=pl.lit(0))
            res = summarise(str(name), str(shape), scored)
            res["calibration"] = point
            results.append(res)
            print(f"{line(res)}  (cuts {', '.join(f'{k} {v:.3f}' for k, v in sorted(point.items()))})")
    if out:
        out.write_text(json.dumps(results, indent=1))
    return 0


def _shipped(model):
    from engine.models.store import BUNDLED_MODEL, load_model

    return load_model(model or BUNDLED_MODEL)


if __name__ == "__main__":
    raise SystemExit(main())
