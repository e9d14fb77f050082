"""Suppressor: an analyst's label takes effect on the next windows without retraining.

Real dump lines: two consecutive rotations of the lab-dev router-shaped corpus
(tests/fixtures/labels/README.md). The stand-in scorer flags every flow, the worst case
for false positives; the Suppressor only rewrites score/verdict/reasons.
"""

from __future__ import annotations

import polars as pl
import pytest

from engine.feedback import Suppressor
from engine.labels import LabelStore
from engine.vectorkey import vector_keys

from .conftest import FIXTURES
from .labels_support import features_of, read_fixture

DIR = FIXTURES / "labels"
THRESHOLD = 0.5


def flag_everything(flows: pl.DataFrame) -> pl.DataFrame:
    return flows.with_columns(
        score=pl.lit(0.9), verdict=pl.lit("anomaly"), reasons=pl.lit("knn p99")
    )


@pytest.fixture(scope="module")
def windows():
    first = read_fixture(DIR / "nfcapd.202701110139.txt")
    second = read_fixture(DIR / "nfcapd.202701110140.txt")
    truth = pl.read_csv(DIR / "routerlike-labels.csv")
    return (
        (first, features_of(first)),
        (second, features_of(second, history=first)),
        truth,
    )


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


def keys(flows, features, names):
    return vector_keys(flows, features, names)


def truth_of(flows, truth):
    named = flows.with_columns(pl.col("file").str.replace(r"^.*/", ""))
    return named.join(truth, on=["file", "line"], how="left")["label"]


def test_a_false_positive_stops_its_vector_being_flagged_in_the_following_window(
    windows, store
):
    (first, feats1), (second, feats2), truth = windows
    names = feats1.columns
    keys1, keys2 = keys(first, feats1, names), keys(second, feats2, names)
    normal1 = truth_of(first, truth) == "normal"
    # The analyst corrects a normal flow whose vector recurs in the next rotation.
    recurring = [i for i in range(first.height) if normal1[i] and keys1[i] in set(keys2)]
    assert recurring, "the fixture must hold a normal vector that recurs"
    i = recurring[0]
    store.add(first.row(i, named=True) | {"verdict": "anomaly"}, "normal", scope="vector",
              features=feats1.row(i, named=True))

    suppressor = Suppressor.from_store(store, THRESHOLD)
    after = suppressor.apply(flag_everything(second), feats2)

    same = keys2 == keys1[i]
    assert same.sum() >= 1
    hit = after.filter(same)
    assert (hit["score"] < THRESHOLD).all() and (hit["verdict"] == "normal").all()
    assert hit["reasons"].str.ends_with("; analyst:normal").all()
    rest = after.filter(~same)
    assert (rest["score"] == 0.9).all() and (rest["verdict"] == "anomaly").all()
    assert after.columns == second.columns + ["score", "verdict", "reasons"]
    assert after.select("file", "line").equals(second.select("file", "line"))


def test_an_attack_label_with_vector_scope_promotes_identical_vectors(windows, store):
    (first, feats1), (second, feats2), truth = windows
    names = feats1.columns
    keys1, keys2 = keys(first, feats1, names), keys(second, feats2, names)
    i = next(k for k in range(first.height) if keys1[k] in set(keys2))
    store.add(first.row(i, named=True), "tunnel", scope="vector",
              features=feats1.row(i, named=True))
    quiet = second.with_columns(score=pl.lit(0.1), verdict=pl.lit("normal"), reasons=pl.lit(""))
    after = Suppressor.from_store(store, THRESHOLD).apply(quiet, feats2)
    same = keys2 == keys1[i]
    assert (after.filter(same)["verdict"] == "tunnel").all()
    assert (after.filter(same)["score"] >= THRESHOLD).all()
    assert (after.filter(same)["reasons"] == "analyst:tunnel").all()
    assert (after.filter(~same)["verdict"] == "normal").all()


def test_flow_scope_touches_only_that_flow_by_either_key(windows, store):
    (first, feats1), _, _ = windows
    row = first.row(10, named=True)
    store.add(row, "normal")  # by file+line and by FLOW_KEY
    # The same flow read from a compressed copy elsewhere still matches.
    moved = first.with_columns(pl.lit("/archive/nfcapd.202701110139.txt.gz").alias("file"))
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(moved), feats1)
    assert after.filter(pl.col("verdict") == "normal")["line"].to_list() == [row["line"]]


def test_source_scope_covers_the_client_in_its_window_only(windows, store):
    (first, feats1), (second, feats2), _ = windows
    row = first.filter(pl.col("dst_port") == 53).row(0, named=True)
    client = row["src_addr"]
    store.add(row, "normal", scope="source", window=(row["ts_first"], row["ts_first"]
              + (first["ts_last"].max() - first["ts_first"].min())))
    both = pl.concat([first, second])
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(both))
    touched = after.filter(pl.col("verdict") == "normal")
    assert touched.height >= 1
    involves = (pl.col("src_addr") == client) | (pl.col("dst_addr") == client)
    assert touched.filter(~involves).height == 0
    assert (touched["ts_first"] >= row["ts_first"]).all()


def test_the_most_specific_label_wins_and_undo_lifts_suppression(windows, store):
    (first, feats1), _, _ = windows
    row, feat = first.row(20, named=True), feats1.row(20, named=True)
    store.add(row, "normal", scope="vector", features=feat)
    store.add(row, "scan", scope="flow")
    # the flow-scope label is the latest on that flow: it replaces the vector label
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(first), feats1)
    assert after.filter(pl.col("line") == row["line"])["verdict"].to_list() == ["scan"]
    store.undo_last()
    store.undo_last()
    assert len(Suppressor.from_store(store, THRESHOLD)) == 0
    again = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(first), feats1)
    assert (again["verdict"] == "anomaly").all()


def test_labels_under_another_feature_set_are_ignored_not_misapplied(windows, store):
    (first, feats1), _, _ = windows
    store.add(first.row(0, named=True), "normal", scope="vector", features={"other": 1.0})
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(first), feats1)
    assert (after["verdict"] == "anomaly").all()
