"""Time-split evaluation on the bundled lab corpora: seed kNN vs rules-only vs the Detector.

For each corpus (data/samples/<corpus>) and exporter shape, the first three rotated files
train and the rest are evaluated (their windows see the training files as history). Printed
per method: per-class precision/recall/F1, macro-F1 over the classes present in the truth,
the share of normal flows flagged, and the confusion matrix.

    python scripts/evaluate_lab.py                    # every table
    python scripts/evaluate_lab.py --corpus lab-dev   # one corpus
    python scripts/evaluate_lab.py --cross            # also train on one corpus, test on the other
    python scripts/evaluate_lab.py --holdout          # leave one attacking address out at a time

--holdout is the nearest these files come to unseen traffic "made with other tools, rates and
addresses": for each attacking address of lab-mixed-dev, every flow it is an endpoint of (and,
for a tunnel, every resolver-to-tunnel-server leg) is removed from training (lab-dev and
lab-mixed-dev, both shapes); the whole shape is then scored, with the held-out flows among
their real neighbours, and only the held-out flows are counted.
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

from engine.config.settings import load_config  # noqa: E402
from engine.core.schema import NORMAL  # noqa: E402
from engine.detect.detector import Detector  # noqa: E402
from engine.detect.features import seed_features  # noqa: E402
from engine.detect.rules import RuleSet  # noqa: E402
from engine.feedback.labelsfile import join_labels  # noqa: E402
from engine.ingest import read_flows  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
SHAPES = ("nfpcapd", "routerlike")
CORPORA = ("lab-dev", "lab-mixed-dev")
TRAIN_FILES = 3
# lab-mixed-dev's README: addresses that browse normally and also attack (or hide a tunnel)
# ... and the addresses that only attack (README of lab-mixed-dev), with their class there
ATTACK_ONLY = {"127.40.175.3": "dns_flood", "127.40.168.19": "amplification",
               "127.40.184.230": "amplification", "127.40.161.77": "tunnel",
               "127.40.186.140": "scan", "127.40.170.250": "zero_packet"}
CLIENT_BLOCK = "127.40.160.0/19"
MIXED_HOSTS = ("127.40.165.44", "127.40.181.7", "127.40.172.150", "127.40.188.23",
               "127.40.163.201", "127.40.177.90", "127.40.190.1")


def load_split(corpus: str, shape: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test) flows with a `label` column, split by rotated file."""
    files = sorted((SAMPLES / corpus / shape).glob("nfcapd.*.txt.gz"))
    truth = pl.read_csv(SAMPLES / corpus / f"{shape}-labels.csv.gz")
    parts = []
    for path in files:
        flows, _ = read_flows([path], timezone="UTC")
        parts.append(flows.with_columns(label=join_labels(flows, truth)))
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


def host_report(test: pl.DataFrame, pred: np.ndarray) -> None:
    """Per mixed address (either end): normal flows flagged, attack flows caught."""
    frame = test.select("src_addr", "dst_addr", "label").with_columns(pred=pl.Series(pred))
    print(f"    {'address':<16}{'normal flagged':>16}{'attack caught':>16}")
    for host in MIXED_HOSTS:
        mine = frame.filter((pl.col("src_addr") == host) | (pl.col("dst_addr") == host))
        normal = mine.filter(pl.col("label") == NORMAL)
        attack = mine.filter(pl.col("label") != NORMAL)
        flagged = (normal["pred"] != NORMAL).sum()
        caught = (attack["pred"] == attack["label"]).sum()
        print(f"    {host:<16}{f'{flagged}/{normal.height}':>16}{f'{caught}/{attack.height}':>16}")


DETECTOR_PARAMS: dict = {}  # --param overrides, for experiments


def detector_predict(train_sets, test: pl.DataFrame, history: pl.DataFrame) -> np.ndarray:
    detector = Detector(**DETECTOR_PARAMS)
    flows = [t for t, _ in train_sets]
    # each training set keeps its own windows: fit on their concatenation
    train = pl.concat(flows)
    labels = pl.concat([t["label"] for t in flows])
    detector.fit(train.drop("label"), labels)
    return detector.score(test.drop("label"), history=history.drop("label"))["verdict"].to_numpy()


# the resolver each tunnel client goes through (README of lab-mixed-dev); 127.40.172.150 goes
# straight to its server
TUNNEL_RESOLVER = {"127.40.190.1": "127.40.4.10", "127.40.161.77": "127.40.4.11"}


def _involves(host: str) -> pl.Expr:
    """The flows `host` is an endpoint of, and the resolver-to-server legs of its tunnel."""
    mine = (pl.col("src_addr") == host) | (pl.col("dst_addr") == host)
    resolver = TUNNEL_RESOLVER.get(host)
    if resolver is None:
        return mine
    leg = ((pl.col("label") == "tunnel") & _outside_block("src_addr") & _outside_block("dst_addr")
           & ((pl.col("src_addr") == resolver) | (pl.col("dst_addr") == resolver)))
    return mine | leg


def _outside_block(col: str) -> pl.Expr:
    """Not in 127.40.160.0/19 (third octet 160-191)."""
    third = pl.col(col).str.split(".").list.get(2, null_on_oob=True).cast(pl.Int32, strict=False)
    return ~(pl.col(col).str.starts_with("127.40.") & third.is_between(160, 191))


def holdout(splits) -> None:
    """Leave one attacking address out of training at a time (see the module docstring)."""
    hosts = {h: None for h in MIXED_HOSTS} | ATTACK_ONLY
    full = {(c, s): pl.concat(splits[(c, s)]) for c in CORPORA for s in SHAPES}
    print(f"\n== leave one attacking address out (train: everything else of both corpora and "
          f"shapes)\n    {'shape':<11}{'address':<16}{'class':<14}{'normal flagged':>16}"
          f"{'attack caught':>15}{'any verdict':>13}")
    totals = {s: [] for s in SHAPES}
    for host, known in hosts.items():
        for shape in SHAPES:
            mixed = full[("lab-mixed-dev", shape)]
            attack_class = known or next(iter(
                mixed.filter(((pl.col("src_addr") == host) | (pl.col("dst_addr") == host))
                             & (pl.col("label") != NORMAL))["label"].unique().to_list()), None)
            if attack_class is None:
                continue
            held = _involves(host)
            train_sets = [(full[(c, s)].filter(~held) if c == "lab-mixed-dev" else full[(c, s)], s)
                          for c in CORPORA for s in SHAPES]
            pred = detector_predict(train_sets, mixed, mixed.clear())
            mask = mixed.select(held.alias("m"))["m"].to_numpy()
            truth = mixed["label"].to_numpy()[mask]
            got = pred[mask]
            normal, attack = truth == NORMAL, truth != NORMAL
            flagged = f"{(got[normal] != NORMAL).sum()}/{normal.sum()}"
            caught = f"{(got[attack] == truth[attack]).sum()}/{attack.sum()}"
            anyv = f"{(got[attack] != NORMAL).sum()}/{attack.sum()}"
            print(f"    {shape:<11}{host:<16}{attack_class:<14}{flagged:>16}{caught:>15}{anyv:>13}")
            totals[shape].append((truth, got))
    for shape in SHAPES:
        truth = np.concatenate([t for t, _ in totals[shape]])
        got = np.concatenate([g for _, g in totals[shape]])
        report(f"held-out flows, {shape}", truth, got, 0.0, True)


def _literal(text: str):
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=CORPORA, action="append")
    ap.add_argument("--brief", action="store_true", help="one line per method, no class tables")
    ap.add_argument("--cross", action="store_true", help="also train on one corpus, test on the other")
    ap.add_argument("--holdout", action="store_true",
                    help="only: leave one attacking address of lab-mixed-dev out at a time")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a Detector constructor parameter, for experiments (repeatable)")
    args = ap.parse_args()
    for item in args.param:
        key, value = item.split("=", 1)
        DETECTOR_PARAMS[key] = _literal(value)
    rules = RuleSet.from_config(load_config(ROOT / "config.toml").rules)
    corpora = args.corpus or list(CORPORA)
    splits = {(c, s): load_split(c, s) for c in CORPORA for s in SHAPES}
    if args.holdout:
        holdout(splits)
        return 0
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
            if corpus == "lab-mixed-dev":
                host_report(test, pred)
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
