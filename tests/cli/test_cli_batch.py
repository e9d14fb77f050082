"""train -> score / eval / sources end to end on a small bundled rotation (real dumps)."""

import json

import numpy as np
import polars as pl
import pytest

from engine.cli.entry import main
from engine.core.schema import SCORED_SCHEMA
from engine.detect.sources import SOURCE_SCHEMA
from engine.feedback.labelsfile import join_labels, read_labels
from engine.ingest import read_dump
from engine.models.store import load_model, read_metadata, save_model
from tests.conftest import ROOT

pytest.importorskip("engine.detect.detector", reason="the Detector (issue 3, helper ml) is not merged yet")

ROUTER = ROOT / "data/samples/lab-dev/routerlike"
LABELS = ROOT / "data/samples/lab-dev/routerlike-labels.csv.gz"
TRAIN = [ROUTER / "nfcapd.202701110138.txt.gz", ROUTER / "nfcapd.202701110139.txt.gz"]
TEST = [ROUTER / "nfcapd.202701110141.txt.gz", ROUTER / "nfcapd.202701110142.txt.gz"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "router.skops"
    argv = ["train", *map(str, TRAIN), "--labels", str(LABELS), "-o", str(out), "--no-label-db"]
    assert main([*argv, "-q"]) == 0
    return out


def test_train_writes_a_model_and_a_sidecar_that_describes_it(model, capsys):
    meta = read_metadata(model)
    assert meta["files"] == [p.name for p in TRAIN]
    assert meta["flows"] == sum(read_dump(p, final=True).flows.height for p in TRAIN)
    assert meta["label_origins"] == {"file": meta["flows"]}  # the labels file covers every flow
    assert {"normal", "scan"} <= set(meta["label_counts"])
    assert meta["features"] and meta["training_window"]["start"].startswith("2027-01-11 01:38")
    assert meta["version"] and 0.0 <= meta["metrics"]["macro_f1"] <= 1.0
    assert meta["libraries"]["skops"]


def test_the_saved_model_scores_like_the_one_just_trained(tmp_path):
    from engine.detect.detector import Detector

    history, flows = (read_dump(p, final=True).flows for p in TRAIN)
    fitted = Detector(n_estimators=5).fit(flows, join_labels(flows, read_labels(LABELS)))
    saved = load_model(save_model(fitted, tmp_path / "d.skops", metadata={}))
    a, b = fitted.score(flows, history=history), saved.score(flows, history=history)
    np.testing.assert_array_equal(a["score"].to_numpy(), b["score"].to_numpy())
    assert a["verdict"].to_list() == b["verdict"].to_list()


def test_score_writes_suspicious_flows_or_all(model, tmp_path, capsys):
    some, every = tmp_path / "some.csv", tmp_path / "all.parquet"
    assert main(["score", *map(str, TEST), "--model", str(model), "-o", str(some)]) == 0
    err = capsys.readouterr().err
    assert f"{TEST[0].name}: " in err and " flows, " in err and "wrote " in err
    assert main(["score", *map(str, TEST), "--model", str(model), "-o", str(every), "--all", "-q"]) == 0
    assert capsys.readouterr().err == ""
    full = pl.read_parquet(every)
    assert full.schema == pl.Schema({**SCORED_SCHEMA, "incident": pl.String})
    # every flagged flow is in an incident, no other flow is (issue 15)
    assert (full["incident"].is_null() == (full["score"] < 0.5)).all()
    assert full.height == sum(read_dump(p, final=True).flows.height for p in TEST)
    assert full["score"].is_between(0.0, 1.0).all() and full["score"].is_finite().all()
    flagged = pl.read_csv(some)
    assert flagged.height == full.filter(pl.col("score") >= 0.5).height > 0
    assert (flagged["score"] >= 0.5).all()


def test_incidents_lists_episodes_and_the_flows_of_each(model, tmp_path, capsys):
    out, flows_out = tmp_path / "incidents.csv", tmp_path / "flows.parquet"
    argv = ["incidents", *map(str, TEST), "--model", str(model), "-o", str(out), "--flows", str(flows_out)]
    assert main([*argv, "-q"]) == 0
    table = pl.read_csv(out)
    required = {"incident", "class", "first_seen", "last_seen", "flows", "packets", "bytes", "max_score",
                "attackers", "victims", "reflectors", "resolvers", "tunnel_endpoints"}
    assert required <= set(table.columns) and table.height > 0
    assert table["incident"].n_unique() == table.height and (table["state"] == "closed").all()
    flows = pl.read_parquet(flows_out)
    assert flows.height == sum(read_dump(p, final=True).flows.height for p in TEST)
    per = flows.filter(pl.col("incident").is_not_null()).group_by("incident").len()
    joined = table.join(per, on="incident", how="left")
    assert (joined["flows"] == joined["len"]).all()  # the table counts the flows it names
    again = tmp_path / "again.jsonl"
    assert main(["incidents", *map(str, TEST), "--model", str(model), "-o", str(again), "-q"]) == 0
    assert sorted(pl.read_ndjson(again)["incident"]) == sorted(table["incident"])  # stable ids


def test_eval_prints_the_report_and_json(model, capsys):
    argv = ["eval", *map(str, TEST), "--truth", str(LABELS), "--model", str(model), "-q"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "confusion matrix (rows: truth, columns: verdict)" in text and "macro-F1" in text
    assert main([*argv, "--json", "-n", "10", "-n", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labelled"] == sum(read_dump(p, final=True).flows.height for p in TEST)
    assert set(report["precision_at"]) == {"10", "50"}
    assert report["model"]["sha256"] == read_metadata(model)["sha256"]
    assert report["per_class"]["normal"]["support"] > 0


def test_eval_with_a_labels_file_for_other_dumps_says_so(model, tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("file,line,label\nnfcapd.209901010000.txt,2,scan\n")
    assert main(["eval", str(TEST[1]), "--truth", str(other), "--model", str(model), "-q"]) == 2
    assert "no row matches a flow" in capsys.readouterr().err


def test_sources_table_and_file(model, tmp_path, capsys):
    assert main(["sources", *map(str, TEST), "--model", str(model), "--top", "5", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["source", "flows", "dns", "bytes", "peers"] and len(lines) == 6
    out = tmp_path / "sources.jsonl"
    assert main(["sources", *map(str, TEST), "--model", str(model), "-o", str(out), "-q"]) == 0
    table = pl.read_ndjson(out)
    assert set(table.columns) == set(SOURCE_SCHEMA)
    assert table["flows"].sum() == sum(read_dump(p, final=True).flows.height for p in TEST)
    assert (table["dns_flows"] <= table["flows"]).all()


def test_train_takes_analyst_labels_from_the_label_store(tmp_path, capsys):
    labels_mod = pytest.importorskip("engine.feedback.labelstore")
    flows = read_dump(TRAIN[0], final=True).flows
    db = tmp_path / "labels.sqlite"
    with labels_mod.LabelStore(db) as store:
        store.add(flows.row(0, named=True), "tunnel")
        store.add(flows.row(1, named=True), "scan")
    out = tmp_path / "m.skops"
    assert main(["train", str(TRAIN[0]), "--label-db", str(db), "-o", str(out), "-q"]) == 0
    origins = read_metadata(out)["label_origins"]
    assert origins["analyst"] == 2 and origins["rule"] + origins["default"] == flows.height - 2


def test_the_bundled_model_loads_and_matches_the_current_features(tmp_path, capsys):
    from engine.detect.features import FEATURE_COLUMNS
    from engine.models.store import BUNDLED_MODEL

    detector = load_model()  # no path: the bundled model, with every check
    assert list(detector.feature_names_) == list(FEATURE_COLUMNS), (
        "engine/models/default.skops is stale: run scripts/train_default_model.py"
    )
    assert read_metadata(BUNDLED_MODEL)["files"]
    out = tmp_path / "flagged.jsonl"
    assert main(["score", str(TEST[0]), "-o", str(out), "-q"]) == 0  # no --model: bundled
    assert out.exists()


def test_eval_on_the_training_files_says_it_is_in_sample(model, capsys):
    argv = ["eval", *map(str, TRAIN), "--truth", str(LABELS), "--model", str(model), "-q"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "IN-SAMPLE: the model was trained on 2 of these 2 file(s)" in text
    assert main(["eval", *map(str, TEST), "--truth", str(LABELS), "--model", str(model), "-q"]) == 0
    assert "IN-SAMPLE" not in capsys.readouterr().out  # held-out files: no warning
