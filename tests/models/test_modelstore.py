"""Model files: round trips are exact; tampered, foreign, pickled or orphaned files are refused."""

import json
import os
import pickle

import numpy as np
import pytest
import sklearn
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.core.errors import UserError
from engine.models.store import (
    ModelRefused,
    list_versions,
    load_model,
    read_metadata,
    save_model,
    save_versioned,
    sidecar_path,
)

META = {"features": ["a", "b", "c", "d"], "label_counts": {"normal": 150, "scan": 50}}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 4))
    y = np.where(X[:, 0] + X[:, 1] > 0.5, "scan", "normal")
    return X, y


def _fit(model, X, y):
    if type(model).__module__.startswith("pyod"):
        return model.fit(X)
    return model.fit(X, y)


def _outputs(model, X):
    if hasattr(model, "decision_function") and model.__module__.startswith("pyod"):
        return model.decision_function(X)
    return model.predict_proba(X)


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1)),
        lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        lambda: HistGradientBoostingClassifier(max_iter=5),
        lambda: KNN(method="largest", contamination=0.01),
        lambda: IForest(n_estimators=10, contamination=0.01, random_state=0),
    ],
    # pyod HBOS (slow to JIT-compile) is covered through the Detector's hbos outlier below.
    ids=["pipeline-knn", "random-forest", "hist-gb", "pyod-knn", "pyod-iforest"],
)
def test_round_trip_gives_identical_outputs(tmp_path, data, make):
    X, y = data
    model = _fit(make(), X, y)
    path = save_model(model, tmp_path / "m.skops", metadata=META)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(_outputs(loaded, X), _outputs(model, X))


def test_sidecar_records_hash_versions_and_caller_metadata(tmp_path, data):
    X, y = data
    path = save_model(_fit(RandomForestClassifier(n_estimators=2), X, y), tmp_path / "m.skops", metadata=META)
    meta = read_metadata(path)
    assert sidecar_path(path).name == "m.skops.json"
    assert len(meta["sha256"]) == 64 and meta["size"] == path.stat().st_size
    assert {"scikit-learn", "pyod", "skops", "numpy", "polars", "flowtriage"} <= set(meta["libraries"])
    assert meta["features"] == META["features"] and meta["label_counts"] == META["label_counts"]
    assert meta["created"].endswith("+00:00")


def test_one_changed_byte_is_refused(tmp_path, data):
    X, y = data
    path = save_model(_fit(RandomForestClassifier(n_estimators=2), X, y), tmp_path / "m.skops", metadata=META)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelRefused, match="sha256 .* does not match"):
        load_model(path)


class Foreign:
    """Stands for any class outside the allow-list (it could be anything on import)."""

    def __init__(self):
        self.weights = [1, 2, 3]


@pytest.mark.parametrize(
    "payload, named",
    [
        ({"model": Foreign()}, "tests.models.test_modelstore.Foreign"),
        ({"hook": os.system}, "posix.system"),
    ],
    ids=["custom-class", "os-function"],
)
def test_foreign_types_are_refused_even_with_a_correct_sidecar(tmp_path, payload, named):
    import hashlib

    import skops.io as sio

    # Written by hand (save_model itself refuses to write such a file), with a sidecar whose
    # hash matches: only the type allow-list stands in the way.
    path = tmp_path / "foreign.skops"
    data = sio.dumps(payload)
    path.write_bytes(data)
    sidecar = {"format": "flowtriage-model", "format_version": 1,
               "sha256": hashlib.sha256(data).hexdigest()}
    sidecar_path(path).write_text(json.dumps(sidecar))
    with pytest.raises(ModelRefused, match=f"outside flowtriage's allow-list: {named}"):
        load_model(path)


def test_save_refuses_to_write_a_model_it_could_not_load(tmp_path):
    with pytest.raises(ValueError, match="TRUSTED_TYPES"):
        save_model({"model": Foreign()}, tmp_path / "m.skops", metadata={})
    assert not (tmp_path / "m.skops").exists()


def test_pickle_renamed_skops_is_refused_without_unpickling(tmp_path, data):
    import hashlib

    X, y = data
    path = tmp_path / "model.skops"
    # A pickle that would create a file if it were ever unpickled.
    canary = tmp_path / "canary"

    class Boom:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    raw = pickle.dumps([Boom(), _fit(RandomForestClassifier(n_estimators=2), X, y)])
    path.write_bytes(raw)
    sidecar = {"format": "flowtriage-model", "format_version": 1,
               "sha256": hashlib.sha256(raw).hexdigest()}
    sidecar_path(path).write_text(json.dumps(sidecar))
    with pytest.raises(ModelRefused, match="pickle/joblib file"):
        load_model(path)
    assert not canary.exists()


def test_missing_sidecar_is_refused(tmp_path, data):
    X, y = data
    path = save_model(_fit(RandomForestClassifier(n_estimators=2), X, y), tmp_path / "m.skops", metadata=META)
    sidecar_path(path).unlink()
    with pytest.raises(ModelRefused, match="no sidecar m.skops.json"):
        load_model(path)


def test_refusals_are_user_errors_and_a_missing_file_says_so(tmp_path):
    with pytest.raises(UserError, match="no such model file"):
        load_model(tmp_path / "nope.skops")
    assert issubclass(ModelRefused, UserError)


def test_sidecar_from_a_newer_format_is_refused(tmp_path, data):
    X, y = data
    path = save_model(_fit(RandomForestClassifier(n_estimators=2), X, y), tmp_path / "m.skops", metadata=META)
    meta = json.loads(sidecar_path(path).read_text())
    meta["format_version"] = 99
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(ModelRefused, match="newer flowtriage"):
        load_model(path)


def test_versions_sit_side_by_side_oldest_first(tmp_path, data):
    X, y = data
    first = save_versioned(_fit(RandomForestClassifier(n_estimators=2, random_state=1), X, y), tmp_path, metadata=META)
    second = save_versioned(_fit(RandomForestClassifier(n_estimators=3, random_state=2), X, y), tmp_path, metadata=META)
    (tmp_path / "notes.txt").write_text("not a model")
    versions = list_versions(tmp_path)
    assert {v.path for v in versions} == {first, second}
    assert versions[0].created <= versions[-1].created
    for v in versions:
        assert v.path.name.startswith("model-") and v.sha8 == v.metadata["sha256"][:8]
        assert load_model(v.path) is not None
    assert list_versions(tmp_path / "missing") == []


def test_a_zip_that_is_not_a_skops_archive_is_refused(tmp_path):
    import hashlib
    import zipfile

    path = tmp_path / "m.skops"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    data = path.read_bytes()
    sidecar = {"format": "flowtriage-model", "format_version": 1,
               "sha256": hashlib.sha256(data).hexdigest()}
    sidecar_path(path).write_text(json.dumps(sidecar))
    with pytest.raises(ModelRefused, match="not a valid skops model file"):
        load_model(path)


def test_version_differences_are_named(tmp_path, data):
    from engine.models.store import version_warnings

    X, y = data
    path = save_model(_fit(RandomForestClassifier(n_estimators=2), X, y), tmp_path / "m.skops", metadata=META)
    meta = read_metadata(path)
    assert version_warnings(meta) == []
    meta["libraries"]["scikit-learn"] = "0.24.2"
    assert version_warnings(meta) == [
        f"scikit-learn 0.24.2 wrote this model, {sklearn.__version__} is installed"
    ]


def _lab_rotation():
    from engine.feedback.labelsfile import join_labels, read_labels
    from engine.ingest import read_dump
    from tests.conftest import ROOT

    router = ROOT / "data/samples/lab-dev/routerlike"
    history = read_dump(router / "nfcapd.202701110140.txt.gz", final=True).flows
    flows = read_dump(router / "nfcapd.202701110141.txt.gz", final=True).flows
    labels = join_labels(flows, read_labels(ROOT / "data/samples/lab-dev/routerlike-labels.csv.gz"))
    return history, flows, labels


DETECTOR_KINDS = [
    ("extratrees", "iforest"),
    ("forest", "knn"),
    ("knn", "hbos"),
    ("extratrees", "abod"),
    ("extratrees", "none"),
]


@pytest.mark.parametrize("classifier, outlier", DETECTOR_KINDS)
def test_every_detector_kind_round_trips_with_identical_scores(tmp_path, classifier, outlier):
    """The allow-list covers what engine.detect.detector.Detector can contain, in each configuration."""
    from engine.config.settings import CLASSIFIERS, OUTLIERS
    from engine.detect.detector import Detector

    assert {c for c, _ in DETECTOR_KINDS} == set(CLASSIFIERS)
    assert {o for _, o in DETECTOR_KINDS} == set(OUTLIERS)
    history, flows, labels = _lab_rotation()
    flows, labels = flows.head(800), labels.head(800)  # enough for every class; ABOD is slow
    fitted = Detector(classifier=classifier, outlier=outlier, n_estimators=5).fit(flows, labels)
    loaded = load_model(save_model(fitted, tmp_path / "d.skops", metadata={}))
    a, b = fitted.score(flows, history=history), loaded.score(flows, history=history)
    assert a.equals(b)
