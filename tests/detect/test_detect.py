"""Detector: trained on real lab dumps it gives sane verdicts on later files, every flow gets a
finite score, a verdict and reasons, kNN-type scorers are exact on deduplicated rows, skops can
save it, and training labels combine analyst > labels file > rules."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import skops.io as sio
from sklearn.metrics import f1_score
from sklearn.neighbors import NearestNeighbors

from engine.config.settings import load_config
from engine.core.schema import LABELS, NORMAL, SCORED_SCHEMA
from engine.detect.detector import Detector, _dedup
from engine.detect.outlier import KNNOutlier
from engine.detect.rules import RuleSet
from engine.feedback.labelsfile import join_labels
from engine.feedback.targets import training_targets
from engine.ingest import read_flows

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "data" / "samples" / "lab-dev"


@cache
def lab_split() -> tuple[pl.DataFrame, pl.DataFrame]:
    """lab-dev router-shaped dumps: files 1-3 train, files 4-5 test, with truth labels."""
    truth = pl.read_csv(CORPUS / "routerlike-labels.csv.gz")
    paths = sorted((CORPUS / "routerlike").glob("nfcapd.*.txt.gz"))
    train, _ = read_flows(paths[:3], timezone="UTC")
    test, _ = read_flows(paths[3:], timezone="UTC")
    return (train.with_columns(label=join_labels(train, truth)),
            test.with_columns(label=join_labels(test, truth)))


@cache
def trained(**params) -> Detector:
    train, _ = lab_split()
    return Detector(**params).fit(train.drop("label"), train["label"])


def rules() -> RuleSet:
    return RuleSet.from_config(load_config(ROOT / "config.toml").rules)


def macro_f1(truth: pl.Series, pred: pl.Series) -> float:
    present = sorted(set(truth.to_list()))
    return float(f1_score(truth.to_numpy(), pred.to_numpy(), labels=present, average="macro"))


def test_sane_verdicts_on_later_files_and_better_than_rules():
    train, test = lab_split()
    scored = trained().score(test.drop("label"), history=train.drop("label"))
    truth = test["label"]
    verdict = scored["verdict"]
    normal = truth == NORMAL
    assert (verdict.filter(normal) != NORMAL).mean() < 0.02
    for cls in ("scan", "zero_packet", "amplification"):
        assert (verdict.filter(truth == cls) == cls).mean() > 0.9, cls
    rules_only = rules().apply(test)["rule_label"].fill_null(NORMAL)
    assert macro_f1(truth, verdict) > macro_f1(truth, rules_only) + 0.2


def test_every_flow_gets_score_verdict_reasons_in_order():
    _, test = lab_split()
    flows = test.drop("label")
    scored = trained().score(flows, rules=rules())
    assert scored.columns == list(SCORED_SCHEMA)
    assert scored.select(list(flows.columns)).equals(flows)  # same rows, same order
    assert scored["score"].is_finite().all()
    assert scored["score"].min() >= 0.0 and scored["score"].max() <= 1.0
    assert set(scored["verdict"].unique()) <= set(LABELS)
    assert scored["reasons"].null_count() == 0
    assert scored["reasons"].str.contains("clf:").all()
    # a rule that fired is named in the reasons
    fired = rules().apply(flows)["rule_names"]
    named = scored.filter(fired.is_not_null() & (fired != ""))["reasons"]
    assert named.len() > 0 and named.str.starts_with("rule:").all()
    flagged = scored.filter(pl.col("score") >= 0.5)
    assert (flagged["verdict"] != NORMAL).all()


def test_empty_batch():
    _, test = lab_split()
    scored = trained().score(test.drop("label")[:0])
    assert scored.height == 0 and scored.columns == list(SCORED_SCHEMA)


@pytest.mark.parametrize("outlier", ["abod", "knn", "hbos", "none"])
def test_scores_finite_on_duplicate_heavy_data(outlier):
    train, test = lab_split()
    # every flow twenty times over: fast ABOD returns NaN on duplicates unless guarded
    dup = pl.concat([train[:300]] * 20)
    detector = Detector(outlier=outlier, n_estimators=8).fit(dup.drop("label"), dup["label"])
    scored = detector.score(pl.concat([test[:200]] * 10).drop("label"))
    assert scored["score"].is_finite().all()
    assert scored["score"].is_between(0.0, 1.0).all()


def test_seed_knn_is_selectable():
    train, test = lab_split()
    seed = Detector(classifier="knn", features="seed", outlier="none").fit(
        train.drop("label"), train["label"])
    assert seed.feature_names_ == ["duration", "packets", "bytes", "pps", "bps", "Bpp", "flows"]
    scored = seed.score(test.drop("label"))
    assert scored["score"].is_finite().all()


def test_knn_outlier_on_distinct_rows_equals_full_data():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(40, 3))
    full = base[rng.integers(0, 40, 400)]  # many exact duplicates
    first, inverse = _dedup(full)
    counts = np.bincount(inverse).astype(float)
    dedup = KNNOutlier(n_neighbors=5).fit(full[first], counts)
    queries = rng.normal(size=(50, 3))
    # the k-th neighbour distance over the full data, duplicates counted
    ref = NearestNeighbors(n_neighbors=5).fit(full).kneighbors(queries)[0][:, -1]
    assert np.allclose(dedup.raw(queries), ref)


def test_dedup_groups_identical_rows():
    X = np.array([[1, 2], [3, 4], [1, 2], [1, 2]], dtype=np.float32)
    first, inverse = _dedup(X)
    assert len(first) == 2
    assert np.array_equal(X[first][inverse], X)


def test_skops_round_trip_scores_identically():
    _, test = lab_split()
    detector = trained()
    blob = sio.dumps(detector)
    loaded = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    a = detector.score(test.drop("label"))
    b = loaded.score(test.drop("label"))
    assert a.equals(b)
    assert detector.version_ and detector.training_window_[0] <= detector.training_window_[1]
    assert detector.label_counts_[NORMAL] > 0


def test_explain_gives_drill_down_detail():
    _, test = lab_split()
    scan = test.filter(pl.col("label") == "scan").drop("label")[:2]
    detail = trained().explain(scan, rules=rules())
    assert len(detail) == 2
    first = detail[0]
    assert first["verdict"] == "scan"
    assert set(first["probabilities"]) == set(trained().classes_)
    assert "c10s_flows" in first["features"]
    assert first["neighbours"] and first["neighbours"][0]["label"] == "scan"
    assert 0.0 <= first["outlier_percentile"] <= 100.0


def test_training_targets_precedence_and_weights():
    _, test = lab_split()
    flows = test.drop("label")[:50]
    truth = pl.DataFrame({"file": [Path(flows["file"][0]).name.removesuffix(".gz")] * 2,
                          "line": [flows["line"][0], flows["line"][1]],
                          "label": ["tunnel", "scan"]})
    analyst = pl.Series([None, "normal"] + [None] * 48, dtype=pl.String)
    got = training_targets(flows, labels_file=truth, analyst=analyst, rules=rules(),
                           analyst_weight=10.0)
    labels, weight = got.labels, got.weight
    assert labels[0] == "tunnel" and weight[0] == 2.0  # labels file over rules
    assert labels[1] == "normal" and weight[1] == 10.0  # analyst over labels file
    assert labels[2:].null_count() == 0 and (weight[2:] == 1.0).all()  # rules (or normal)
    only_rules = training_targets(flows, rules=rules()).labels
    assert set(only_rules.unique()) <= set(LABELS)


def test_fit_refuses_bad_input():
    train, _ = lab_split()
    with pytest.raises(ValueError, match="labels for"):
        Detector().fit(train.drop("label"), train["label"][:10])
    with pytest.raises(ValueError, match="no labelled flows"):
        Detector().fit(train.drop("label"), pl.Series([None] * train.height, dtype=pl.String))
    with pytest.raises(ValueError, match="unknown classifier"):
        Detector(classifier="svm").fit(train.drop("label"), train["label"])


@pytest.mark.parametrize("params", [
    {"outlier": "iforest"}, {"outlier": "knn"}, {"outlier": "abod"}, {"outlier": "hbos"},
    {"outlier": "none"}, {"classifier": "forest"}, {"classifier": "knn", "features": "seed"},
])
def test_every_variant_passes_the_model_store_allow_list(tmp_path, params):
    from engine.models.store import load_model, save_model

    train, test = lab_split()
    detector = Detector(n_estimators=4, **params).fit(train.drop("label")[:3000], train["label"][:3000])
    path = save_model(detector, tmp_path / "m.skops", metadata={})
    loaded = load_model(path)
    assert loaded.score(test.drop("label")[:200]).equals(detector.score(test.drop("label")[:200]))
