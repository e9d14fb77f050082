"""`flowtriage labels list|export|import` over a real store and the real fixture dumps."""

from __future__ import annotations

import polars as pl
import pytest

from engine.cli.commands.labels import inert
from engine.cli.entry import main
from engine.core.schema import FLOW_KEY
from engine.feedback.labelstore import LabelStore
from tests.conftest import FIXTURES, ROOT
from tests.labels_support import read_fixture

DUMP = FIXTURES / "labels" / "nfcapd.202701110140.txt"


def config_for(tmp_path, name):
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[labels]\ndb = "{tmp_path / name}.sqlite"\nextra_classes = ["c2"]\n')
    return path


@pytest.fixture(scope="module")
def flows():
    return read_fixture(DUMP)


def test_export_then_import_round_trips_and_joins_back_on_either_key(tmp_path, flows, capsys):
    here = config_for(tmp_path, "here")
    with LabelStore(tmp_path / "here.sqlite", extra_classes=["c2"]) as store:
        store.add(flows.row(0, named=True), "tunnel", model_version="m-1", note="iodine, big")
        store.add(flows.row(3, named=True), "normal", scope="vector", vector_key="v1|k")
        store.add(flows.row(5, named=True), "c2")
        store.add(flows.row(7, named=True), "scan")
        store.undo_last()
    out = tmp_path / "labels.csv"
    assert main(["labels", "export", "-o", str(out), "--config", str(here)]) == 0
    exported = pl.read_csv(out, infer_schema=False)
    assert exported.columns[:9] == ["label", "file", "line", *FLOW_KEY]
    assert {"who", "at", "scope", "note", "model_version"} <= set(exported.columns)
    assert exported["label"].to_list() == ["tunnel", "normal", "c2"]
    assert exported["note"].to_list()[0] == "iodine, big"

    # Joins back to the flows on file+line and, independently, on the canonical key.
    by_line = flows.with_columns(pl.col("file").str.replace(r"^.*/", "")).join(
        exported.with_columns(pl.col("line").cast(pl.Int64)), on=["file", "line"]
    )
    assert by_line["line"].to_list() == [2, 5, 7]
    keyed = exported.with_columns(
        pl.col("ts_first").str.to_datetime("%Y-%m-%d %H:%M:%S%.3f", time_unit="ms"),
        pl.col("src_port").cast(pl.Int32), pl.col("dst_port").cast(pl.Int32),
    ).select(*FLOW_KEY, "label")
    assert flows.join(keyed, on=list(FLOW_KEY))["line"].to_list() == [2, 5, 7]

    there = config_for(tmp_path, "there")
    assert main(["labels", "--config", str(there), "import", str(out)]) == 0
    with LabelStore(tmp_path / "there.sqlite") as imported:
        current = imported.current()
    assert current["label"].to_list() == ["tunnel", "normal", "c2"]
    assert current["line"].to_list() == [2, 5, 7]
    assert set(current["scope"]) == {"flow"}
    assert current["note"].to_list()[0] == "iodine, big"
    assert current.select(FLOW_KEY).equals(
        flows.filter(pl.col("line").is_in([2, 5, 7])).select(FLOW_KEY)
    )
    assert "imported 3 labels" in capsys.readouterr().out


def test_import_reads_a_plain_labels_file_and_skips_bad_rows_by_line(tmp_path, capsys):
    labels = tmp_path / "truth.csv"
    labels.write_text("file,line,label\nnfcapd.1.txt,2,scan\nnfcapd.1.txt,x3,scan\n"
                      "nfcapd.1.txt,4,\nnfcapd.1.txt,5,normal\n")
    assert main(["labels", "import", str(labels), "--config", str(config_for(tmp_path, "a"))]) == 0
    err = capsys.readouterr().err
    assert f"{labels}:3: skipped" in err and f"{labels}:4: skipped" in err
    with LabelStore(tmp_path / "a.sqlite") as store:
        assert store.current()["line"].to_list() == [2, 5]


def test_import_refuses_unknown_labels_and_writes_nothing(tmp_path, capsys):
    labels = tmp_path / "truth.csv"
    labels.write_text("file,line,label\nnfcapd.1.txt,2,scan\nnfcapd.1.txt,3,exfil\n")
    code = main(["labels", "import", str(labels), "--config", str(config_for(tmp_path, "b"))])
    assert code == 2
    err = capsys.readouterr().err
    # the one labels-file reader's message: the file, the label and the line it is first on
    assert f"{labels}:" in err and "outside the vocabulary: 'exfil' x1 (first at line 3)" in err
    with LabelStore(tmp_path / "b.sqlite") as store:
        assert len(store) == 0


def test_import_names_a_file_without_keys(tmp_path, capsys):
    labels = tmp_path / "x.csv"
    labels.write_text("label,host\nscan,a\n")
    assert main(["labels", "import", str(labels), "--config", str(config_for(tmp_path, "c"))]) == 2
    assert "x.csv: a labels file needs a 'label' column" in capsys.readouterr().err


def test_list_prints_untrusted_text_inert(tmp_path, flows, capsys):
    config = config_for(tmp_path, "d")
    hostile = {**flows.row(0, named=True), "src_addr": "10.0.0.1\x1b]0;pwned\x07"}
    with LabelStore(tmp_path / "d.sqlite") as store:
        store.add(hostile, "scan", note="see \x1b[31mred\x1b[0m\nnext line \u202e")
    assert main(["labels", "list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "10.0.0.1\\x1b]0;pwned\\x07" in out and "\\x1b[31mred" in out
    assert len(out.strip().splitlines()) == 2  # header + one row: the newline did not split it
    assert main(["labels", "list", "--all", "--config", str(config)]) == 0
    assert "\x1b" not in capsys.readouterr().out


def test_inert_keeps_ordinary_text():
    assert inert("127.10.0.53 café [b]x[/b]") == "127.10.0.53 café [b]x[/b]"
    assert inert(None) == ""


def test_the_export_is_a_labels_file_for_train_and_eval(tmp_path, flows):
    from engine.feedback.labelsfile import join_labels, read_labels

    here = config_for(tmp_path, "e")
    with LabelStore(tmp_path / "e.sqlite") as store:
        store.add(flows.row(0, named=True), "tunnel")
        store.add(flows.row(9, named=True), "scan")
    out = tmp_path / "export.csv"
    assert main(["labels", "export", "-o", str(out), "--config", str(here)]) == 0
    joined = join_labels(flows, read_labels(out))
    assert flows.filter(joined.is_not_null())["line"].to_list() == [2, 11]
    assert joined.drop_nulls().to_list() == ["tunnel", "scan"]
    # The canonical key alone (a copy without file/line) joins the same rows.
    keyed = tmp_path / "keyed.csv"
    pl.read_csv(out, infer_schema=False).drop("file", "line").write_csv(keyed)
    assert join_labels(flows, read_labels(keyed)).drop_nulls().to_list() == ["tunnel", "scan"]


def test_score_applies_analyst_labels_from_the_store(tmp_path):
    """A false positive marked in the label store stays quiet in batch `score` output too."""
    from engine.config.settings import load_config

    dump = ROOT / "data/samples/lab-dev/routerlike/nfcapd.202701110138.txt.gz"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[labels]\ndb = "{tmp_path / "labels.sqlite"}"\n')
    before = tmp_path / "before.parquet"
    assert main(["score", str(dump), "-o", str(before), "--all", "-q", "--config", str(cfg)]) == 0
    scored = pl.read_parquet(before)
    flagged = scored.filter(pl.col("score") >= 0.5)
    assert flagged.height > 0
    row = flagged.row(0, named=True)
    with LabelStore.from_config(load_config(cfg)) as store:
        store.add(row, "normal", scope="flow")
    after = tmp_path / "after.parquet"
    assert main(["score", str(dump), "-o", str(after), "--all", "-q", "--config", str(cfg)]) == 0
    again = pl.read_parquet(after).filter(
        (pl.col("file") == row["file"]) & (pl.col("line") == row["line"])
    ).row(0, named=True)
    assert again["verdict"] == "normal" and again["score"] < 0.5
    assert again["reasons"].endswith("analyst:normal")
