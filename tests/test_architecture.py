"""The engine must never load the UI: importing any engine module leaves textual unloaded."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parent.parent


def test_engine_modules_never_import_textual():
    modules = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine."))
    modules = [m for m in modules if not m.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'tui')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"engine imported UI modules: {out.stdout.strip()}"
    assert "engine.config.settings" in modules and "engine.cli.entry" in modules


# ---- one definition per concept: a second copy that drifts fails here ------------------------

def _dns_flows():
    import datetime as dt

    import polars as pl

    from engine.core.schema import FLOW_SCHEMA, conform

    rows = {
        # resolver to resolver (53 -> 53), then a client's query, then a non-DNS flow
        "src_addr": ["10.0.0.1", "10.0.0.3", "10.0.0.4"],
        "src_port": [53, 40000, 443],
        "dst_addr": ["10.0.0.2", "10.0.0.1", "10.0.0.5"],
        "dst_port": [53, 53, 51000],
    }
    n = len(rows["src_addr"])
    start = dt.datetime(2026, 11, 22, 8, 35)
    frame = pl.DataFrame({
        **rows, "ts_first": [start] * n, "ts_last": [start] * n, "duration": [0.0] * n,
        "proto": ["UDP", "UDP", "TCP"], "tcp_flags": ["........"] * n, "tos": [0] * n,
        "packets": [1] * n, "bytes": [120, 60, 40], "flows": [1] * n, "approx": [False] * n,
        "file": ["/x/nfcapd.202611220835.txt.gz"] * n, "line": [2, 3, 4],
    })
    return conform(frame, FLOW_SCHEMA)


def test_a_flow_has_one_dns_client_everywhere(tmp_path):
    import polars as pl

    from engine.core.roles import client_addr
    from engine.detect.features import _base
    from engine.feedback.labelstore import LabelStore
    from engine.feedback.vectorkey import vector_keys

    flows = _dns_flows()
    expected = ["10.0.0.2", "10.0.0.3", "10.0.0.4"]  # 53 -> 53 is an answer to its destination
    assert flows.select(client_addr().alias("client"))["client"].to_list() == expected
    own = flows.with_columns(_own=pl.lit(True))
    assert _base(own).collect()["client"].to_list() == expected  # the model's features
    roles = [key.split("|")[2] for key in vector_keys(flows).to_list()]  # the analyst's vectors
    assert roles == ["answer", "query", "other"]
    with LabelStore(tmp_path / "labels.sqlite") as store:  # the analyst's "source" scope
        for row in flows.iter_rows(named=True):
            store.add(row, "tunnel", scope="source")
        assert store.current()["source_addr"].to_list() == expected


def test_a_labels_file_gives_the_same_keys_to_train_eval_and_import(tmp_path):
    import polars as pl

    import engine.cli.commands.eval as eval_command
    import engine.cli.commands.train as train_command
    from engine.cli.entry import main
    from engine.feedback import labelsfile
    from engine.feedback.labelstore import LabelStore

    # one reader: the commands use the labels-file module itself, not a copy
    assert train_command.read_labels is labelsfile.read_labels
    assert eval_command.read_labels is labelsfile.read_labels
    labels = tmp_path / "truth.csv"
    labels.write_text(
        "ts_first,src_addr,src_port,dst_addr,dst_port,proto,label\n"
        "2026-11-22 08:35:00.000,10.0.0.3,40000,10.0.0.1,53,udp,tunnel\n"
        "2026-11-22 08:35:00.000,10.0.0.4,443,10.0.0.5,51000,6,scan\n"
    )
    read = labelsfile.read_labels(labels)
    assert read["proto"].to_list() == ["UDP", "TCP"]  # as flows spell them
    joined = labelsfile.join_labels(_dns_flows(), read)
    assert joined.to_list() == [None, "tunnel", "scan"]
    config = tmp_path / "config.toml"
    config.write_text(f'[labels]\ndb = "{tmp_path / "labels.sqlite"}"\n')
    assert main(["labels", "import", str(labels), "--config", str(config)]) == 0
    with LabelStore(tmp_path / "labels.sqlite") as store:
        stored = store.current().sort("label")
    assert stored["proto"].to_list() == ["TCP", "UDP"]
    assert stored.select("src_addr", "src_port", "dst_port").rows() == (
        read.sort("label").select("src_addr", "src_port", "dst_port").rows()
    )
    assert pl.Series(stored["ts_first"]).dt.year().to_list() == [2026, 2026]


def test_a_dump_has_one_name_and_one_idea_of_what_is_a_dump(tmp_path):
    import polars as pl

    from engine.batch.plan import expand_paths
    from engine.core.dumpfiles import dump_name, dump_name_expr, list_dumps
    from engine.feedback.labelstore import LabelStore

    flows = _dns_flows()
    assert dump_name(flows["file"][0]) == "nfcapd.202611220835.txt"
    assert flows.select(dump_name_expr(pl.col("file")))["file"][0] == "nfcapd.202611220835.txt"
    with LabelStore(tmp_path / "labels.sqlite") as store:
        store.add(flows.row(0, named=True), "tunnel")
        assert store.current()["file"].to_list() == ["nfcapd.202611220835.txt"]
    for name in ("nfcapd.1.txt", "nfcapd.2.txt.gz", ".nfcapd.3.txt", "nfcapd.4.txt.part",
                 "state.sqlite", "model.skops", "model.skops.json"):
        (tmp_path / name).write_text("x")
    wanted = ["nfcapd.1.txt", "nfcapd.2.txt.gz"]
    assert [p.name for p in list_dumps(tmp_path, "nfcapd.*")] == wanted
    assert [p.name for p in expand_paths([tmp_path], glob="nfcapd.*")] == wanted


def test_train_and_retrain_share_one_definition_of_training_targets(tmp_path):
    from engine.config.settings import Config
    from engine.detect.rules import RuleSet
    from engine.feedback.labelstore import LabelStore
    from engine.feedback.retrain import retrain_targets
    from engine.feedback.targets import training_targets

    flows, config = _dns_flows(), Config()
    with LabelStore(tmp_path / "labels.sqlite") as store:
        store.add(flows.row(1, named=True), "tunnel")
        labels, weight, is_analyst = retrain_targets(flows, store, config)
    direct = training_targets(
        flows, analyst=labels.zip_with(is_analyst, labels.clear(len(labels))),
        rules=RuleSet.from_config(config.rules), analyst_weight=config.labels.analyst_weight,
    )
    assert labels.to_list() == direct.labels.to_list()
    assert weight.to_list() == direct.weight.to_list()
    assert weight.to_list()[1] == config.labels.analyst_weight
