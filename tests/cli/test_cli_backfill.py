"""`flowtriage backfill` on the command line: a run and its rerun, and the refusals (bad model,
a cluster path without Spark, a malformed --spark-conf) before any work."""

import shutil

import pytest
from sklearn.ensemble import RandomForestClassifier

from engine.cli.entry import main
from engine.models.store import save_model
from tests.conftest import ROOT

ROUTER = ROOT / "data/samples/lab-dev/routerlike"


@pytest.fixture
def exporter(tmp_path):
    rtr = tmp_path / "in" / "rtr"
    rtr.mkdir(parents=True)
    for name in ("nfcapd.202701110141.txt.gz", "nfcapd.202701110142.txt.gz"):
        shutil.copy(ROUTER / name, rtr / name)
    return rtr


def test_backfill_writes_partitions_then_skips_them(exporter, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["backfill", str(exporter), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "exporter=rtr/day=2027-01-11: 3795 flows" in err
    assert "3795 flows in 2 file(s) (2 scanned now); 1 partition(s) written" in err
    assert len(list((out / "exporter=rtr" / "day=2027-01-11").glob("*.parquet"))) == 1
    assert main(["backfill", str(exporter), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 partition(s), 1 already done" in err and "(0 scanned now)" in err


@pytest.fixture
def tampered(tmp_path):
    fitted = RandomForestClassifier(n_estimators=2).fit([[0.0], [1.0]], ["normal", "scan"])
    model = save_model(fitted, tmp_path / "m.skops", metadata={})
    raw = bytearray(model.read_bytes())
    raw[-100] ^= 0xFF
    model.write_bytes(bytes(raw))
    return model


def test_a_tampered_model_is_refused_before_any_work(exporter, tmp_path, capsys, tampered):
    out = tmp_path / "out"
    assert main(["backfill", str(exporter), "--out", str(out), "--model", str(tampered)]) == 2
    assert f"flowtriage backfill: {tampered}: sha256 " in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "hdfs:///flows/scored"], "hdfs:///flows/scored: cluster filesystems are read by "
         "Spark's JVM; use --engine spark"),
        (["--engine", "spark", "--spark-conf", "spark.master"], "--spark-conf 'spark.master': "
         "expected KEY=VALUE"),
        (["--dask-scheduler", "tcp://127.0.0.1:1"], "--dask-scheduler applies to --engine dask only"),
    ],
)
def test_wrong_engine_options_are_refused(exporter, tmp_path, capsys, extra, message):
    argv = ["backfill", str(exporter), "--out", str(tmp_path / "out"), *extra]  # a later --out wins
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
