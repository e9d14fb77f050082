"""Simulated analyst: does feedback put more true attacks in front of the analyst?

Replays the bundled lab-dev corpus with the attack classes sampled down to about 1% of flows
(by default as whole bursts, so that a rare attack keeps its own window context),
scores it once with the Detector, then lets an oracle that knows the truth labels answer the
top-ranked unanswered flow, one at a time, as an analyst would: a normal flow gets `n`
(label `normal`, scope `[labels] normal_scope`, default vector), an attack gets `l` with its
class (scope `[labels] attack_scope`, default flow; `--attack-scope vector` to promote
lookalikes). Each
answer goes into a temporary LabelStore and the Suppressor re-ranks at once; with
`--retrain-every N` the Detector is also retrained from rule + analyst labels every N answers.

Reported after 0, 25, 50 and 100 answers, with and without feedback:
- found: true attack flows among the flows answered so far (the AAD measure);
- p@100: share of true attacks among the 100 highest-ranked flows (answered or not);
- fp@100: normal flows among those 100;
- p@100 open: the same over the flows not yet answered (what is left to look at).
Target (issue 6): p@100 after 50 answers >= 1.3x without feedback, or where p@100 without
feedback is above 0.75, fp@100 at least halved.

    python bench/feedback.py [--shape routerlike|nfpcapd|both] [--retrain-every 25]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config.settings import load_config  # noqa: E402
from engine.core.dumpfiles import dump_name_expr  # noqa: E402
from engine.core.roles import client_addr  # noqa: E402
from engine.core.schema import NORMAL  # noqa: E402
from engine.feedback.labelstore import LabelStore  # noqa: E402
from engine.feedback.suppress import Suppressor  # noqa: E402
from engine.feedback.vectorkey import CONTEXT_WINDOW, with_vector_keys  # noqa: E402

CORPUS = ROOT / "data" / "samples" / "lab-dev"
CHECKPOINTS = (0, 25, 50, 100)


def load_replay(
    shape: str, attack_share: float, seed: int, sampling: str = "bursts"
) -> tuple[pl.DataFrame, pl.Series]:
    from engine.ingest import read_flows

    shapes = ("routerlike", "nfpcapd") if shape == "both" else (shape,)
    frames = []
    for s in shapes:
        flows, _ = read_flows(sorted((CORPUS / s).glob("nfcapd.*.txt.gz")), timezone="UTC")
        truth = pl.read_csv(CORPUS / f"{s}-labels.csv.gz", schema_overrides={"line": pl.Int64})
        flows = flows.with_columns(dump_name_expr(pl.col("file")).alias("__name")).join(
            truth.rename({"file": "__name", "label": "truth"}), on=["__name", "line"], how="left"
        ).drop("__name")
        frames.append(flows)
    flows = pl.concat(frames).filter(pl.col("truth").is_not_null())
    normal = flows.filter(pl.col("truth") == NORMAL)
    attacks = flows.filter(pl.col("truth") != NORMAL)
    budget = min(attacks.height, round(attack_share / (1 - attack_share) * normal.height))
    if sampling == "flows":
        attacks = attacks.sample(n=budget, seed=seed)
    else:
        attacks = sample_bursts(attacks, budget, seed)
    replay = pl.concat([normal, attacks]).sort("ts_first", maintain_order=True)
    return replay.drop("truth"), replay["truth"]


def sample_bursts(attacks: pl.DataFrame, budget: int, seed: int) -> pl.DataFrame:
    """Whole bursts (one attacking client's flows of one class in one 10 s window), in random
    order, each taken if it still fits the budget: a rare attack keeps its own context."""
    burst = [client_addr(), pl.col("truth"), pl.col("ts_first").dt.truncate(CONTEXT_WINDOW)]
    grouped = attacks.with_columns(pl.struct(burst).rank("dense").alias("__burst"))
    sizes = grouped.group_by("__burst").len().sort("__burst")
    order = np.random.default_rng(seed).permutation(sizes.height)
    chosen, left = [], budget
    for burst_id, size in sizes[order].iter_rows():
        if size <= left:
            chosen.append(burst_id)
            left -= size
    return grouped.filter(pl.col("__burst").is_in(chosen)).drop("__burst")


def get_detector(args, flows: pl.DataFrame, config) -> tuple[object, str]:
    """By default a Detector fitted on the replay's own rule labels: what a fresh install does
    on new traffic. A model file is refused when it was trained on the replayed dumps (the
    bundled model was: it has seen these truth labels, so its queue would be perfect)."""
    if args.model:
        from engine.models.store import load_model, read_metadata

        seen = set(read_metadata(args.model).get("files") or [])
        replayed = set(flows["file"].str.replace(r"^.*/", "").unique().to_list())
        if seen & replayed:
            raise SystemExit(f"{args.model} was trained on {len(seen & replayed)} of the "
                             "replayed dumps: its ranking would be an in-sample upper bound")
        return load_model(args.model), f"model file {args.model}"
    from engine.detect.detector import Detector
    from engine.feedback.retrain import rule_targets

    detector = Detector().fit(flows, rule_targets(flows, config))
    return detector, "Detector() fitted on the replay's rule labels"


def metrics(current: pl.DataFrame, order: np.ndarray, truth: np.ndarray,
            answered: np.ndarray) -> dict[str, float]:
    ranked = rank(current, order)
    top = ranked[:100]
    open_top = ranked[~answered[ranked]][:100]
    attack = truth != NORMAL
    return {
        "found": int((attack & answered).sum()),
        "p@100": float(attack[top].mean()),
        "fp@100": int((~attack[top]).sum()),
        "p@100 open": float(attack[open_top].mean()) if open_top.size else 0.0,
    }


def rank(current: pl.DataFrame, order: np.ndarray) -> np.ndarray:
    """Row indices by score, highest first; ties broken by a fixed random order."""
    score = current["score"].fill_null(0.0).fill_nan(0.0).to_numpy()
    return np.lexsort((order, -score))


def simulate(args, flows, truth, detector, config, *, feedback: bool,
             retrain_every: int | None) -> tuple[list[dict], float]:
    from engine.feedback.retrain import retrain

    threshold = float(detector.threshold)
    scopes = (config.labels.normal_scope, args.attack_scope or config.labels.attack_scope)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(flows.height)
    truth_np = truth.to_numpy()
    base = with_vector_keys(detector.score(flows))
    current = base
    answered = np.zeros(flows.height, dtype=bool)
    retrains: list[bool] = []
    rows = [{"answers": 0, **metrics(current, order, truth_np, answered)}]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = LabelStore(Path(tmp) / "labels.sqlite")
        for step in range(1, max(CHECKPOINTS) + 1):
            ranked = rank(current, order)
            pick = int(ranked[~answered[ranked]][0])
            answered[pick] = True
            if feedback:
                label = str(truth_np[pick])
                scope = scopes[0] if label == NORMAL else scopes[1]
                store.add(base.row(pick, named=True), label, scope=scope, who="oracle")
                if retrain_every and step % retrain_every == 0:
                    result = retrain(flows, store, detector, config, save=False)
                    retrains.append(result.accepted)
                    if result.accepted:  # as the app does: swap only if not worse
                        detector = result.detector
                        threshold = float(getattr(detector, "threshold", threshold))
                        base = with_vector_keys(detector.score(flows))
                current = Suppressor.from_store(store, threshold).apply(base)
            if step in CHECKPOINTS:
                rows.append({"answers": step, **metrics(current, order, truth_np, answered)})
        store.close()
    if retrains:
        print(f"retrains accepted (holdout not worse): {sum(retrains)} of {len(retrains)}")
    return rows, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("routerlike", "nfpcapd", "both"), default="routerlike")
    parser.add_argument("--attack-share", type=float, default=0.01)
    parser.add_argument("--sampling", choices=("bursts", "flows"), default="bursts",
                        help="keep whole attack bursts (client, class, 10 s window; default) "
                        "or sample single attack flows (thins every attack out of its context)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain-every", type=int, default=0, help="0 = never")
    parser.add_argument("--model", help="a model file not trained on lab-dev (default: a "
                        "Detector fitted on the replay's rule labels)")
    parser.add_argument("--attack-scope", choices=("flow", "vector"),
                        help="scope of the oracle's attack labels (default: [labels] "
                        "attack_scope); false positives use [labels] normal_scope")
    args = parser.parse_args(argv)
    # joblib inside the Detector's forest repeats one sklearn warning per tree and call.
    warnings.filterwarnings("ignore", message=".*sklearn.utils.parallel.delayed.*")
    config = load_config(ROOT / "config.toml")

    flows, truth = load_replay(args.shape, args.attack_share, args.seed, args.sampling)
    detector, how = get_detector(args, flows, config)
    attacks = int((truth != NORMAL).sum())
    scopes = (config.labels.normal_scope, args.attack_scope or config.labels.attack_scope)
    print(f"oracle scopes: normal -> {scopes[0]}, attacks -> {scopes[1]}")
    print(f"lab-dev {args.shape}: {flows.height} flows, {attacks} attack flows "
          f"({attacks / flows.height:.2%}, sampled as {args.sampling}), seed {args.seed}; "
          f"detector: {how}")
    print("attack flows by class:", dict(truth.filter(truth != NORMAL).value_counts().iter_rows()))
    runs = [("no feedback", False, None), ("suppression", True, None)]
    if args.retrain_every:
        runs.append((f"suppression + retrain/{args.retrain_every}", True, args.retrain_every))
    table = {}
    for name, feedback, every in runs:
        rows, seconds = simulate(args, flows, truth, detector, config, feedback=feedback,
                                 retrain_every=every)
        table[name] = rows
        print(f"\n{name} ({seconds:.1f} s)")
        print(f"{'answers':>8} {'found':>6} {'p@100':>6} {'fp@100':>7} {'p@100 open':>11}")
        for r in rows:
            print(f"{r['answers']:>8} {r['found']:>6} {r['p@100']:>6.2f} {r['fp@100']:>7} "
                  f"{r['p@100 open']:>11.2f}")
    base50 = table["no feedback"][2]
    for name, rows in table.items():
        if name == "no feedback":
            continue
        at50 = rows[2]
        if base50["p@100"] > 0.75:
            ok = at50["fp@100"] * 2 <= base50["fp@100"]
            what = f"fp@100 {base50['fp@100']} -> {at50['fp@100']} (target: at least halved)"
        else:
            ratio = at50["p@100"] / base50["p@100"] if base50["p@100"] else float("inf")
            ok = ratio >= 1.3
            what = (f"p@100 {base50['p@100']:.2f} -> {at50['p@100']:.2f} = {ratio:.2f}x "
                    "(target: >= 1.30x)")
        print(f"\nafter 50 answers, {name}: {what}: {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
