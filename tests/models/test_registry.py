"""The registry: the one place that decides which model is current, and the one threshold."""

import dataclasses

import polars as pl
import pytest

from engine.config.settings import Config, parse_config
from engine.core.errors import UserError
from engine.detect.detector import Detector
from engine.models.registry import (
    CURRENT,
    load_detector,
    load_scorer,
    model_path,
    rollback,
    set_current,
)
from engine.models.store import BUNDLED_MODEL, save_versioned
from tests.conftest import FIXTURES
from tests.labels_support import read_fixture


@pytest.fixture(scope="module")
def small_detector():
    flows = read_fixture(FIXTURES / "labels" / "nfcapd.202701110139.txt")
    labels = pl.Series(["scan" if b == 58 else "normal" for b in flows["bytes"]])
    return Detector(n_estimators=4, outlier="none", n_jobs=1).fit(flows, labels)


def _config(tmp_path, **model) -> Config:
    config = Config()
    labels = dataclasses.replace(config.labels, model_dir=str(tmp_path / "models"))
    return dataclasses.replace(config, labels=labels, model=dataclasses.replace(config.model, **model))


def test_model_choice_order_flag_config_current_bundled(tmp_path, small_detector):
    config = _config(tmp_path)
    assert model_path(config) == BUNDLED_MODEL
    directory = tmp_path / "models"
    directory.mkdir()
    version = save_versioned(small_detector, directory, metadata={})
    assert model_path(config) == BUNDLED_MODEL  # a version alone is not current
    set_current(directory, version)
    assert (directory / CURRENT).is_file()
    assert model_path(config) == version  # a restart loads what a retrain made current
    chosen = _config(tmp_path, path=str(tmp_path / "other.skops"))
    assert model_path(chosen) == tmp_path / "other.skops"
    assert model_path(chosen, tmp_path / "flag.skops") == tmp_path / "flag.skops"


def test_rollback_loads_before_it_points(tmp_path, small_detector):
    directory = tmp_path / "models"
    directory.mkdir()
    first = save_versioned(small_detector, directory, metadata={})
    second = save_versioned(small_detector, directory, metadata={})
    set_current(directory, second)
    path, model = rollback(directory)
    assert path == first and hasattr(model, "score")
    assert (directory / CURRENT).read_text().strip() == first.name


def test_one_threshold_the_models_own_unless_the_config_overrides_it(tmp_path):
    plain = _config(tmp_path)
    detector, _, _ = load_detector(plain)
    assert detector.threshold == 0.5  # the bundled model's own cut
    strict = _config(tmp_path, threshold=0.8)
    assert load_detector(strict)[0].threshold == 0.8
    assert load_scorer(strict).threshold == 0.8


def test_threshold_in_a_file_is_optional_and_checked():
    assert parse_config({}).model.threshold is None
    assert parse_config({"model": {"threshold": 0.7}}).model.threshold == 0.7
    with pytest.raises(ValueError, match="threshold"):
        parse_config({"model": {"threshold": 1.5}})


def test_the_bundled_model_is_version_0_and_rollback_reaches_it(tmp_path, small_detector):
    from engine.models.registry import BUNDLED, all_versions, current_model

    directory = tmp_path / "models"
    only = save_versioned(small_detector, directory, metadata={})
    set_current(directory, only)
    names = [v.name for v in all_versions(directory)]
    assert names == [BUNDLED, only.stem]
    path, _ = rollback(directory)  # the version before the only retrained one
    assert path == BUNDLED_MODEL and current_model(directory) == BUNDLED_MODEL
    assert model_path(_config(tmp_path)) == BUNDLED_MODEL
    assert [v.name for v in all_versions(directory) if v.current] == [BUNDLED]
    with pytest.raises(UserError, match="no version older"):
        rollback(directory)
    rollback(directory, only.stem[:20])
    assert model_path(_config(tmp_path)) == only


def test_models_cli_lists_uses_and_diffs(tmp_path, small_detector, capsys):
    from engine.cli.entry import main

    directory = tmp_path / "models"
    version = save_versioned(small_detector, directory, metadata={"flows": 200})
    config = tmp_path / "config.toml"
    config.write_text(f'[labels]\nmodel_dir = "{directory}"\n')
    assert main(["models", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert "bundled" in listed and version.stem in listed
    assert main(["models", "use", version.stem, "--config", str(config)]) == 0
    assert (directory / CURRENT).read_text().strip() == version.name
    dump = FIXTURES / "labels" / "nfcapd.202701110139.txt"
    assert main(["models", "diff", "bundled", "current", str(dump), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "change verdict from A to B" in out and "verdicts by class" in out
