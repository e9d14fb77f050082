"""The batch commands refuse bad models and bad paths with a one-line message and exit 2."""

import pytest
from sklearn.ensemble import RandomForestClassifier

from engine.cli.entry import main
from engine.models.store import save_model
from tests.conftest import ROOT

DUMP = ROOT / "data/samples/lab-dev/routerlike/nfcapd.202701110142.txt.gz"


@pytest.fixture
def model(tmp_path):
    fitted = RandomForestClassifier(n_estimators=2).fit([[0.0], [1.0]], ["normal", "scan"])
    return save_model(fitted, tmp_path / "m.skops", metadata={})


@pytest.mark.parametrize("command", ["score", "eval", "sources"])
def test_a_tampered_model_is_refused_before_any_work(tmp_path, capsys, model, command):
    raw = bytearray(model.read_bytes())
    raw[-100] ^= 0xFF
    model.write_bytes(bytes(raw))
    out = tmp_path / "out.csv"
    argv = [command, str(DUMP), "--model", str(model), "-q"]
    argv += ["--truth", str(ROOT / "data/samples/lab-dev/routerlike-labels.csv.gz")] if command == "eval" else []
    argv += ["-o", str(out)] if command != "eval" else []
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flowtriage {command}: {model}: sha256 ")
    assert "restore it from a trusted copy or retrain" in err.lower()
    assert not out.exists()


def test_a_model_that_is_not_a_detector_is_refused(tmp_path, capsys, model):
    assert main(["score", str(DUMP), "--model", str(model), "-o", str(tmp_path / "o.csv")]) == 2
    assert "holds a RandomForestClassifier, not a flowtriage detector" in capsys.readouterr().err


def test_a_missing_input_is_named(tmp_path, capsys, model):
    missing = tmp_path / "nfcapd.nope.txt"
    assert main(["score", str(missing), "--model", str(model), "-o", str(tmp_path / "o.csv")]) == 2
    assert f"{missing}: no such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["score", str(DUMP), "-o", "out.xlsx"], "unknown output format '.xlsx'"),
        (["sources", str(DUMP), "-o", "nodir/out.csv"], "directory nodir does not exist"),
        (["train", str(DUMP), "-o", "nodir/m.skops"], "directory nodir does not exist"),
    ],
)
def test_an_unusable_output_is_refused_before_any_work(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
