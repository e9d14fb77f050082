"""Retraining from rule + analyst labels on real fixture flows, versioning and rollback."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from engine.config.settings import parse_config
from engine.core.errors import UserError
from engine.feedback.labelstore import LabelStore
from engine.feedback.retrain import per_class_f1, retrain, time_split
from engine.models.registry import current_model, rollback, set_current
from tests.conftest import FIXTURES
from tests.labels_support import read_fixture

DIR = FIXTURES / "labels"


@pytest.fixture(scope="module")
def flows():
    return pl.concat(
        [read_fixture(DIR / "nfcapd.202701110139.txt"), read_fixture(DIR / "nfcapd.202701110140.txt")]
    ).sort("ts_first", maintain_order=True)


@pytest.fixture
def config(tmp_path):
    return parse_config({"labels": {"db": str(tmp_path / "l.sqlite"),
                                    "model_dir": str(tmp_path / "models")}})


def test_the_holdout_is_the_latest_slice_of_the_window():
    start = datetime(2027, 1, 11, 1, 0)
    flows = pl.DataFrame({"ts_first": [start + timedelta(seconds=s) for s in range(100)]})
    train, holdout = time_split(flows, 0.2)
    assert holdout.sum() == 21 and train.sum() == 79
    assert flows.filter(train)["ts_first"].max() < flows.filter(holdout)["ts_first"].min()
    # By flows, not by clock: a long quiet tail does not leave the holdout nearly empty.
    tail = pl.DataFrame({"ts_first": [start + timedelta(seconds=s) for s in range(99)]
                         + [start + timedelta(hours=5)]})
    assert time_split(tail, 0.2)[1].sum() == 21
    # One busy instant is never split between the two sides.
    same = pl.DataFrame({"ts_first": [start] * 90 + [start + timedelta(seconds=1)] * 10})
    train, holdout = time_split(same, 0.2)
    assert train.sum() == 90 and holdout.sum() == 10
    with pytest.raises(UserError, match="between 0 and 1"):
        time_split(flows, 1.5)
    with pytest.raises(UserError, match="spanning some time"):
        time_split(flows.head(1), 0.2)


def test_per_class_f1_counts_only_classes_in_the_truth():
    truth = pl.Series(["normal", "normal", "scan", "scan"])
    verdict = pl.Series(["normal", "scan", "scan", None])
    f1 = per_class_f1(truth, verdict)
    assert set(f1) == {"normal", "scan"}
    # a missing verdict counts as normal: each class has 1 hit, 1 false alarm, 1 miss
    assert f1 == {"normal": pytest.approx(0.5), "scan": pytest.approx(0.5)}


def test_analyst_labels_override_rule_labels_and_weigh_more(flows, config):
    from engine.feedback.retrain import retrain_targets, rule_targets

    rules = rule_targets(flows, config)
    with LabelStore.from_config(config) as store:
        store.add(flows.row(0, named=True), "tunnel")
        store.add(flows.row(1, named=True), "anomaly")  # not a class: the rule label stays
        labels, weight, is_analyst = retrain_targets(flows, store, config)
    assert labels[0] == "tunnel" and weight[0] == config.labels.analyst_weight
    assert labels[1] == rules[1] and weight[1] == 1.0
    assert int(is_analyst.sum()) == 1
    assert labels.slice(2).equals(rules.slice(2).alias("label"))


def test_retrain_writes_a_version_and_rollback_restores_the_previous(flows, config):
    from engine.detect.detector import Detector
    from engine.feedback.retrain import rule_targets
    from engine.models.store import list_versions

    # A small model keeps the test quick; retraining copies its settings.
    base = Detector(n_estimators=8, outlier="none", n_jobs=1)
    base.fit(flows, rule_targets(flows, config))
    stages = []
    with LabelStore.from_config(config) as store:
        first = retrain(flows, store, base, config, refit_full=False,
                        progress=lambda s, f: stages.append((s, f)))
        assert first.path is not None and first.path.is_file()
        assert first.detector.n_estimators == 8 and first.holdout >= 0.2 * flows.height
        if not first.accepted:  # not better than the base: the test needs it current
            set_current(config.model_dir_path, first.path)
        assert current_model(config.model_dir_path) == first.path
        assert stages[0][1] == 0.0 and stages[-1] == ("done", 1.0)
        # The analyst corrects a flow; the second model learns it and reports what changed.
        store.add(flows.row(5, named=True), "tunnel")
        second = retrain(flows, store, first.detector, config, refit_full=False)
    assert isinstance(second.detector, Detector)
    assert second.path != first.path and second.path.name.startswith("model-")
    assert len(list_versions(config.model_dir_path)) == 2
    assert set(second.f1_before) == set(second.f1_after)
    assert second.analyst_labelled >= 1 and second.flows == flows.height
    assert second.summary().startswith(second.version)
    if second.accepted:
        assert current_model(config.model_dir_path) == second.path
        path, model = rollback(config.model_dir_path)  # the version before the current one
    else:
        assert current_model(config.model_dir_path) == first.path
        path, model = rollback(config.model_dir_path, first.path.stem)
    assert path == first.path and current_model(config.model_dir_path) == first.path
    assert model.score(flows.head(3)).height == 3
    path, _ = rollback(config.model_dir_path, second.path.stem[-8:])  # by sha8
    assert current_model(config.model_dir_path) == second.path
    # A damaged file is refused and never becomes current.
    first.path.write_bytes(first.path.read_bytes()[:-10])
    with pytest.raises(UserError, match="sha256"):
        rollback(config.model_dir_path, first.path.stem)
    assert current_model(config.model_dir_path) == second.path
    with pytest.raises(UserError, match="no model matches"):
        rollback(config.model_dir_path, "model-19990101")
