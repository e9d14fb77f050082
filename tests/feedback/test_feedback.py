"""Suppressor: an analyst's label takes effect on the next windows without retraining.

Real dump lines: two consecutive rotations of the lab-dev router-shaped corpus
(tests/fixtures/labels/README.md). The stand-in scorer flags every flow, the worst case
for false positives; the Suppressor only rewrites score/verdict/reasons.
"""

from __future__ import annotations

import polars as pl
import pytest

from engine.config.settings import parse_config
from engine.feedback.labelstore import LabelStore
from engine.feedback.suppress import Feedback, Suppressor
from engine.feedback.vectorkey import rounded_text, vector_keys, with_vector_keys
from tests.conftest import FIXTURES
from tests.labels_support import read_fixture

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
    named = pl.col("file").str.replace(r"^.*/", "")
    first_truth = first.with_columns(named).join(truth, on=["file", "line"], how="left")
    assert first_truth.height == first.height
    return first, second, first_truth["label"]


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


def test_a_false_positive_stops_its_vector_being_flagged_in_the_following_window(
    windows, store
):
    first, second, truth1 = windows
    # What the TUI shows: scored rows carrying their vector key.
    shown = with_vector_keys(flag_everything(first))
    keys2 = vector_keys(second, history=first)
    recurring = shown.filter((truth1 == "normal") & pl.col("vector_key").is_in(keys2.implode()))
    assert recurring.height, "the fixture must hold a normal vector that recurs"
    row = recurring.row(0, named=True)
    store.add(row, "normal", scope="vector")  # the `n` key

    suppressor = Suppressor.from_store(store, THRESHOLD)
    after = suppressor.apply(flag_everything(second), history=first)

    same = keys2 == row["vector_key"]
    assert same.sum() >= 1
    hit = after.filter(same)
    assert (hit["score"] < THRESHOLD).all() and (hit["verdict"] == "normal").all()
    assert hit["reasons"].str.ends_with("; analyst:normal").all()
    rest = after.filter(~same)
    assert rest.height > 0
    assert (rest["score"] == 0.9).all() and (rest["verdict"] == "anomaly").all()
    assert after.columns == second.columns + ["score", "verdict", "reasons"]
    assert after.select("file", "line").equals(second.select("file", "line"))


def test_every_marked_normal_vector_stays_quiet_in_the_next_window(windows, store):
    first, second, truth1 = windows
    shown = with_vector_keys(flag_everything(first))
    # The analyst marks every normal flow of the first rotation as a false positive.
    for row in shown.filter(truth1 == "normal").iter_rows(named=True):
        store.add(row, "normal", scope="vector")
    marked = set(shown.filter(truth1 == "normal")["vector_key"])
    after = with_vector_keys(
        Suppressor.from_store(store, THRESHOLD).apply(flag_everything(second), history=first),
        history=first,
    )
    covered = after.filter(pl.col("vector_key").is_in(list(marked)))
    assert covered.height > 0
    assert (covered["score"] < THRESHOLD).all()
    # Not everything: the tunnel flows of the second rotation are still flagged.
    assert after.filter(pl.col("score") >= THRESHOLD).height > 0


def test_an_attack_label_with_vector_scope_promotes_identical_vectors(windows, store):
    first, second, _ = windows
    shown = with_vector_keys(first)
    keys2 = vector_keys(second, history=first)
    row = shown.filter(pl.col("vector_key").is_in(keys2.implode())).row(0, named=True)
    store.add(row, "tunnel", scope="vector")
    quiet = second.with_columns(score=pl.lit(0.1), verdict=pl.lit("normal"), reasons=pl.lit(""))
    after = Suppressor.from_store(store, THRESHOLD).apply(quiet, history=first)
    same = keys2 == row["vector_key"]
    assert (after.filter(same)["verdict"] == "tunnel").all()
    assert (after.filter(same)["score"] >= THRESHOLD).all()
    assert (after.filter(same)["reasons"] == "analyst:tunnel").all()
    assert (after.filter(~same)["verdict"] == "normal").all()


def test_flow_scope_touches_only_that_flow_by_either_key(windows, store):
    first, _, _ = windows
    row = first.row(10, named=True)
    store.add(row, "normal")  # by file+line and by FLOW_KEY
    moved = first.with_columns(pl.lit("/archive/nfcapd.202701110139.txt.gz").alias("file"))
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(moved))
    assert after.filter(pl.col("verdict") == "normal")["line"].to_list() == [row["line"]]
    # Renamed beyond recognition, the canonical key still finds it.
    renamed = first.with_columns(pl.lit("elsewhere.txt").alias("file"))
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(renamed))
    assert after.filter(pl.col("verdict") == "normal")["line"].to_list() == [row["line"]]


def test_source_scope_covers_the_client_in_its_window_only(windows, store):
    first, second, _ = windows
    row = first.filter(pl.col("dst_port") == 53).row(0, named=True)
    client = row["src_addr"]
    end = first["ts_last"].max()
    store.add(row, "normal", scope="source", window=(row["ts_first"], end))
    both = pl.concat([first, second])
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(both))
    touched = after.filter(pl.col("verdict") == "normal")
    assert touched.height >= 1
    involves = (pl.col("src_addr") == client) | (pl.col("dst_addr") == client)
    assert touched.filter(~involves).height == 0
    assert (touched["ts_first"] >= row["ts_first"]).all() and (touched["ts_first"] < end).all()


def test_the_latest_label_on_a_flow_wins_and_undo_lifts_suppression(windows, store):
    first, _, _ = windows
    shown = with_vector_keys(first)
    row = shown.row(20, named=True)
    store.add(row, "normal", scope="vector")
    store.add(row, "scan", scope="flow")  # replaces the vector label of that flow
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(first))
    assert after.filter(pl.col("line") == row["line"])["verdict"].to_list() == ["scan"]
    assert after.filter(pl.col("verdict") == "normal").height == 0
    store.undo_last()
    after = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(first))
    assert after.filter(pl.col("line") == row["line"])["verdict"].to_list() == ["normal"]
    store.undo_last()
    assert len(Suppressor.from_store(store, THRESHOLD)) == 0
    again = Suppressor.from_store(store, THRESHOLD).apply(flag_everything(first))
    assert (again["verdict"] == "anomaly").all()


def test_vector_keys_are_exact_text_and_version_tagged(windows):
    first, _, _ = windows
    # 72.065 s, 2 packets, 150/134 bytes; the client's 10 s window holds this query and its
    # answer (2 flows, 1 server): octaves 1 and 0. 7361 packets round to 736e1 at 3 digits.
    assert vector_keys(first.head(4)).to_list() == [
        "v1|UDP|answer|p=2|b=150|d=16|cf=1|cp=0",
        "v1|UDP|query|p=2|b=134|d=16|cf=1|cp=0",
        "v1|UDP|answer|p=736e1|b=320e4|d=16|cf=1|cp=0",
        "v1|UDP|query|p=736e1|b=200e4|d=16|cf=1|cp=0",
    ]


def test_rounding_gives_one_spelling_per_value():
    x = pl.DataFrame({"x": [999.6, 1000.0, 123.44, -0.0012345, 0.0, None, float("nan")]})
    assert x.select(rounded_text(pl.col("x"), 3).alias("k"))["k"].to_list() == [
        "100e1", "100e1", "123e0", "-123e-5", "0", "null", "nan",
    ]


def test_feedback_applies_at_once_undo_restores_the_models_output(windows, tmp_path):
    first, second, truth1 = windows
    config = parse_config({"labels": {"db": str(tmp_path / "f.sqlite")}})
    feedback = Feedback.from_config(config, threshold=THRESHOLD)
    shown = feedback.apply(flag_everything(first))  # what the live view holds
    assert {"vector_key", "model_score", "model_verdict"} <= set(shown.columns)
    row = shown.filter(truth1 == "normal").row(0, named=True)

    event = feedback.label(row, "normal")  # the `n` key
    assert event.scope == "vector"
    shown = feedback.apply(shown)
    hit = shown.filter(pl.col("vector_key") == row["vector_key"])
    assert (hit["verdict"] == "normal").all() and (hit["score"] < THRESHOLD).all()
    assert (hit["model_score"] == 0.9).all()
    assert feedback.apply(shown).equals(shown)  # applying again changes nothing

    feedback.undo()  # the `u` key
    restored = feedback.apply(shown)
    assert (restored["verdict"] == "anomaly").all() and (restored["score"] == 0.9).all()
    assert (restored["reasons"] == "knn p99").all()

    # `l` with an attack class covers the flow only, unless asked for more.
    attack = feedback.label(shown.row(1, named=True), "tunnel")
    assert attack.scope == "flow"
    assert feedback.apply(shown).filter(pl.col("verdict") == "tunnel").height == 1
    feedback.undo()

    # Another analyst's label, written by another connection, reaches this view too.
    with LabelStore(tmp_path / "f.sqlite") as other:
        other.add(row, "normal", scope="flow", who="bob")
    again = feedback.apply(restored)
    assert again.filter(pl.col("verdict") == "normal")["line"].to_list() == [row["line"]]
    recorded = feedback.store.events().filter(pl.col("kind") == "label")
    assert recorded["verdict"].to_list() == ["anomaly"] * 3  # what the model had said


def test_batch_scoring_without_a_store_changes_nothing_and_creates_nothing(windows, tmp_path):
    first, _, _ = windows
    config = parse_config({"labels": {"db": str(tmp_path / "none.sqlite")}})
    suppressor = Suppressor.from_config(config)
    assert len(suppressor) == 0 and not (tmp_path / "none.sqlite").exists()
    scored = flag_everything(first)
    assert suppressor.apply(scored).equals(scored)
    with LabelStore(tmp_path / "none.sqlite") as store:
        store.add(with_vector_keys(first).row(0, named=True), "normal", scope="vector")
    assert len(Suppressor.from_config(config)) == 1
