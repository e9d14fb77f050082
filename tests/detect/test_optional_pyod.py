"""PyOD is an optional extra (`flowtriage[pyod]`): without it the default detectors train, save,
load and score, and the PyOD ones say which extra to install (training or loading)."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from engine.core.errors import UserError
from engine.detect.detector import Detector
from engine.feedback.labelsfile import join_labels, read_labels
from engine.ingest import read_flows
from engine.models.store import load_model, save_model

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "data" / "samples" / "lab-dev"


def _flows() -> pl.DataFrame:
    flows, _ = read_flows(sorted((CORPUS / "routerlike").glob("nfcapd.*.txt.gz"))[:1], timezone="UTC")
    return flows.with_columns(label=join_labels(flows, read_labels(CORPUS / "routerlike-labels.csv.gz")))


def _without_pyod(monkeypatch) -> None:
    """As if PyOD were not installed: a None in sys.modules makes every import of it fail."""
    for name in [m for m in sys.modules if m == "pyod" or m.startswith("pyod.")] + ["pyod"]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("outlier", ["abod", "hbos"])
def test_a_pyod_detector_without_pyod_names_the_extra(monkeypatch, outlier):
    flows = _flows()[:2000]
    _without_pyod(monkeypatch)
    with pytest.raises(UserError, match=r"flowtriage\[pyod\]"):
        Detector(outlier=outlier, n_estimators=4).fit(flows.drop("label"), flows["label"])


@pytest.mark.parametrize("outlier", ["iforest", "knn", "none"])
def test_the_other_detectors_need_no_pyod(monkeypatch, tmp_path, outlier):
    flows = _flows()[:3000]
    _without_pyod(monkeypatch)
    detector = Detector(outlier=outlier, n_estimators=4).fit(flows.drop("label"), flows["label"])
    loaded = load_model(save_model(detector, tmp_path / "m.skops", metadata={}))
    assert loaded.score(flows.drop("label")).equals(detector.score(flows.drop("label")))


def test_loading_a_pyod_model_without_pyod_names_the_extra(monkeypatch, tmp_path):
    flows = _flows()[:3000]
    detector = Detector(outlier="hbos", n_estimators=4).fit(flows.drop("label"), flows["label"])
    path = save_model(detector, tmp_path / "m.skops", metadata={})
    _without_pyod(monkeypatch)
    with pytest.raises(UserError, match=r"PyOD.*flowtriage\[pyod\]"):
        load_model(path)
