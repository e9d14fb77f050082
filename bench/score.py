"""End-to-end `score` throughput (parse, features, rules, models) next to the seed pipeline.

Builds a large extended dump (default about 1.4 M flows) by repeating the bundled nfpcapd-shape
sample dumps with every copy moved to another day and other addresses, then times, in the same
run:

- ours: engine.ingest.read_flows -> RuleSet.apply -> Detector.score (features, classifier,
  outlier scorer, verdicts, reasons), with the bundled default model if present, else a
  Detector trained here (not timed) on the bundled labelled samples;
- the seed: pandas.read_csv of the same flows as CSV, the seven per-flow features,
  StandardScaler + KNeighborsClassifier(n_neighbors=1) trained on the same labelled samples.
  Its kNN predicts a few thousand rows/s, so it predicts a random subsample and its time is
  extrapolated to the whole dump (said so in the output).

    python bench/score.py [--copies 4] [--seed-sample 20000]

The machine is shared: figures are noisy; compare the ratio, and re-run.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from engine.config.settings import load_config  # noqa: E402
from engine.detect.detector import Detector  # noqa: E402
from engine.detect.features import seed_features  # noqa: E402
from engine.detect.rules import RuleSet  # noqa: E402
from engine.feedback.labelsfile import join_labels, read_labels  # noqa: E402
from engine.ingest import read_flows  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
OUT = ROOT / "bench" / "out"
TRAILER = (b"Summary:", b"Time window:", b"Total flows processed:", b"Sys:")


def sample_dumps() -> list[Path]:
    return sorted(SAMPLES.glob("*/nfpcapd/nfcapd.*.txt.gz"))


def build_dump(copies: int) -> Path:
    """One extended dump: the sample flows `copies` times, each copy on its own day and
    addresses (so windows and hosts do not merge across copies)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"score-bench-{copies}x-v2.txt"
    if path.exists():
        return path
    header = None
    bodies = []
    for dump in sample_dumps():
        lines = gzip.decompress(dump.read_bytes()).split(b"\n")
        header = header or lines[0]
        bodies.append(b"\n".join(ln for ln in lines[1:] if ln and not ln.startswith(TRAILER)))
    body = b"\n".join(bodies)
    with open(path, "wb") as fh:
        fh.write(header + b"\n")
        for k in range(copies):
            copy = body.replace(b"2026-11-22 ", f"2026-11-{22 + k:02d} ".encode())
            # Same-length replacements: nfdump right-aligns addresses in fixed-width columns,
            # and a dump whose columns wander is not one nfdump prints.
            copy = copy.replace(b" 127.10.", f"   10.{k}.".encode()).replace(
                b" 127.40.", f" 10.{100 + k}.".encode()
            )
            fh.write(copy + b"\n")
    return path


def labelled_samples() -> pl.DataFrame:
    parts = []
    for corpus in ("lab-dev", "lab-mixed-dev"):
        for shape in ("nfpcapd", "routerlike"):
            truth = read_labels(SAMPLES / corpus / f"{shape}-labels.csv.gz")
            flows, _ = read_flows(sorted((SAMPLES / corpus / shape).glob("*.txt.gz")), timezone="UTC")
            parts.append(flows.with_columns(label=join_labels(flows, truth)))
    return pl.concat(parts)


def load_detector(train: pl.DataFrame) -> tuple[Detector, str]:
    model = ROOT / "engine" / "models" / "default.skops"
    if model.exists():
        try:
            from engine.models.store import load_model

            return load_model(model), f"bundled {model.relative_to(ROOT)}"
        except ImportError:
            pass
    return Detector().fit(train.drop("label"), train["label"]), "Detector() trained on data/samples"


def time_ours(path: Path, detector: Detector, rules: RuleSet) -> tuple[float, int, dict]:
    """Wall seconds, flows, and per-stage wall and CPU (all threads) seconds."""
    stages: dict[str, tuple[float, float]] = {}
    start = time.perf_counter()

    def stage(name, fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        stages[name] = (time.perf_counter() - w, time.process_time() - c)
        return out

    flows, _ = stage("parse", lambda: read_flows([path], timezone="UTC"))
    stage("rules", lambda: rules.apply(flows))  # what `score` shows next to the model
    scored = stage("features+models", lambda: detector.score(flows, rules=rules))
    wall = time.perf_counter() - start
    assert scored.height == flows.height and scored["score"].is_finite().all()
    return wall, flows.height, stages


def time_seed(flows: pl.DataFrame, train: pl.DataFrame, sample: int) -> tuple[float, str]:
    import pandas as pd
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    csv = OUT / "score-bench-seed.csv"
    flows.select("ts_first", "duration", "proto", "src_addr", "src_port", "dst_addr", "dst_port",
                 "packets", "bytes", "flows").write_csv(csv)
    cols = ["duration", "packets", "bytes", "pps", "bps", "Bpp", "flows"]
    scaler = StandardScaler()
    knn = KNeighborsClassifier(n_neighbors=1)
    knn.fit(scaler.fit_transform(seed_features(train).to_numpy()), train["label"].to_numpy())

    t0 = time.perf_counter()
    df = pd.read_csv(csv)
    d = df["duration"]
    df["pps"] = (df["packets"] / d).where(d > 0, 0.0)
    df["bps"] = (8 * df["bytes"] / d).where(d > 0, 0.0)
    df["Bpp"] = df["bytes"] / df["packets"].clip(lower=1)
    X = scaler.transform(df[cols].to_numpy())
    t1 = time.perf_counter()
    rows = np.random.default_rng(0).choice(len(X), min(sample, len(X)), replace=False)
    knn.predict(X[rows])
    t2 = time.perf_counter()
    total = (t1 - t0) + (t2 - t1) * len(X) / len(rows)
    note = (f"read+features {t1 - t0:.1f} s on all {len(X):,} rows; kNN on {len(rows):,} sampled "
            f"rows in {t2 - t1:.1f} s, extrapolated to all")
    return total, note


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=4, help="copies of the sample dumps (~350 k flows each)")
    ap.add_argument("--seed-sample", type=int, default=10000, help="rows the seed kNN predicts")
    args = ap.parse_args()
    path = build_dump(args.copies)
    rules = RuleSet.from_config(load_config(ROOT / "config.toml").rules)
    train = labelled_samples()
    detector, which = load_detector(train)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores: other jobs inflate wall times")
    print(f"dump: {path} ({path.stat().st_size / 1e6:.0f} MB); model: {which}")
    ours, n, parts = time_ours(path, detector, rules)
    cpu = sum(c for _, c in parts.values())
    print(f"ours:  {n:,} flows in {ours:.2f} s = {n / ours:,.0f} flows/s; CPU {cpu:.2f} s "
          f"(= {n / cpu:,.0f} flows per CPU-second)")
    for name, (w, c) in parts.items():
        print(f"       {name:<16} wall {w:6.2f} s  cpu {c:6.2f} s")
    flows, _ = read_flows([path], timezone="UTC")
    seed, note = time_seed(flows, train, args.seed_sample)
    print(f"seed:  {n:,} flows in {seed:.1f} s = {n / seed:,.0f} flows/s  ({note})")
    print(f"ratio: ours is {seed / ours:.1f}x the seed pipeline's throughput")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
