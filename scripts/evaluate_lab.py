"""Time-split evaluation on the bundled lab corpora: seed kNN vs rules-only vs the Detector.

For each corpus (data/samples/<corpus>) and exporter shape, the first three rotated files
train and the rest are evaluated (their windows see the training files as history). Printed
per method: per-class precision/recall/F1, macro-F1 over the classes present in the truth,
the share of normal flows flagged, and the confusion matrix.

    python scripts/evaluate_lab.py                    # every table
    python scripts/evaluate_lab.py --corpus lab-dev   # one corpus
    python scripts/evaluate_lab.py --cross            # also train on one corpus, test on the other
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import load_config  # noqa: E402
from engine.detect import Detector, _join_keyed  # noqa: E402
from engine.features import seed_features  # noqa: E402
from engine.ingest import read_flows  # noqa: E402
from engine.rules import RuleSet  # noqa: E402
from engine.schema import NORMAL  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
SHAPES = ("nfpcapd", "routerlike")
CORPORA = ("lab-dev", "lab-mixed-dev")
TRAIN_FILES = 3


def load_split(corpus: str, shape: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test) flows with a `label` column, split by rotated file."""
    files = sorted((SAMPLES / corpus / shape).glob("nfcapd.*.txt.gz"))
    truth = pl.read_csv(SAMPLES / corpus / f"{shape}-labels.csv.gz")
    parts = []
    for path in files:
        flows, _ = read_flows([path], timezone="UTC")
        parts.append(flows.with_columns(label=_join_keyed(flows, truth)))
    return pl.concat(parts[:TRAIN_FILES]), pl.concat(parts[TRAIN_FILES:])


def seed_predict(train: pl.DataFrame, test: pl.DataFrame) -> np.ndarray:
    """The seed method as published: StandardScaler + KNeighborsClassifier(1), 7 raw features."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1))
    model.fit(seed_features(train).to_numpy(), train["label"].to_numpy())
    return model.predict(seed_features(test).to_numpy())


def report(name: str, truth: np.ndarray, pred: np.ndarray, seconds: float, full: bool) -> dict:
    present = sorted(set(truth))
    p, r, f, n = precision_recall_fscore_support(truth, pred, labels=present, zero_division=0)
    normal = truth == NORMAL
    flagged = float(np.mean(pred[normal] != NORMAL)) if normal.any() else float("nan")
    macro = float(np.mean(f))
    print(f"  {name:<34} macro-F1 {macro:.3f}  normal flagged {flagged * 100:5.2f}%  "
          f"worst {present[int(np.argmin(f))]} {f.min():.3f}  ({seconds:.1f} s)")
    if full:
        print(f"    {'class':<14}{'P':>7}{'R':>7}{'F1':>7}{'n':>8}")
        for c, pi, ri, fi, ni in zip(present, p, r, f, n, strict=True):
            print(f"    {c:<14}{pi:7.3f}{ri:7.3f}{fi:7.3f}{ni:8d}")
        cols = sorted(set(present) | set(pred))
        cm = confusion_matrix(truth, pred, labels=cols)
        print("    confusion (rows truth, cols verdict): " + " ".join(c[:6] for c in cols))
        for c, row in zip(cols, cm, strict=True):
            if c in present:
                print(f"      {c[:13]:<13} " + " ".join(f"{v:6d}" for v in row))
    return {"macro_f1": macro, "normal_flagged": flagged, "per_class": dict(zip(present, f, strict=True))}


def detector_predict(train_sets, test: pl.DataFrame, history: pl.DataFrame) -> np.ndarray:
    detector = Detector()
    flows = [t for t, _ in train_sets]
    # each training set keeps its own windows: fit on their concatenation
    train = pl.concat(flows)
    labels = pl.concat([t["label"] for t in flows])
    detector.fit(train.drop("label"), labels)
    return detector.score(test.drop("label"), history=history.drop("label"))["verdict"].to_numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=CORPORA, action="append")
    ap.add_argument("--brief", action="store_true", help="one line per method, no class tables")
    ap.add_argument("--cross", action="store_true", help="also train on one corpus, test on the other")
    args = ap.parse_args()
    rules = RuleSet.from_config(load_config(ROOT / "config.toml").rules)
    corpora = args.corpus or list(CORPORA)
    splits = {(c, s): load_split(c, s) for c in CORPORA for s in SHAPES}
    for corpus in corpora:
        for shape in SHAPES:
            train, test = splits[(corpus, shape)]
            truth = test["label"].to_numpy()
            print(f"\n== {corpus} / {shape}: train {train.height} flows (files 1-{TRAIN_FILES}), "
                  f"test {test.height} flows (later files)")
            t = time.perf_counter()
            pred = seed_predict(train, test)
            report("seed kNN (7 features, k=1)", truth, pred, time.perf_counter() - t, not args.brief)
            t = time.perf_counter()
            pred = rules.apply(test)["rule_label"].fill_null(NORMAL).to_numpy()
            report("rules only", truth, pred, time.perf_counter() - t, not args.brief)
            t = time.perf_counter()
            pred = detector_predict([(train, shape)], test, train)
            report("Detector, this shape", truth, pred, time.perf_counter() - t, not args.brief)
            other = splits[(corpus, SHAPES[1 - SHAPES.index(shape)])][0]
            t = time.perf_counter()
            pred = detector_predict([(train, shape), (other, "other")], test, train)
            report("Detector, both shapes", truth, pred, time.perf_counter() - t, not args.brief)
            t = time.perf_counter()
            everything = [(splits[(c, s)][0], s) for c in CORPORA for s in SHAPES]
            pred = detector_predict(everything, test, train)
            report("Detector, both shapes + corpora", truth, pred, time.perf_counter() - t,
                   not args.brief)
    if args.cross:
        for src, dst in (("lab-dev", "lab-mixed-dev"), ("lab-mixed-dev", "lab-dev")):
            print(f"\n== cross-corpus: train {src} (all files, both shapes), test {dst} (all files)")
            train_sets = [(pl.concat(splits[(src, s)]), s) for s in SHAPES]
            for shape in SHAPES:
                test = pl.concat(splits[(dst, shape)])
                t = time.perf_counter()
                pred = detector_predict(train_sets, test, test.clear())
                report(f"Detector -> {dst} {shape}", test["label"].to_numpy(), pred,
                       time.perf_counter() - t, not args.brief)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
