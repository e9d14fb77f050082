"""Every config value is checked when the file is loaded, and the message names the file and
the key: a value that would busy-loop, silence alerting or stop the pipeline later is refused."""

from __future__ import annotations

import pytest

from engine.config.settings import ConfigError, load_config

BAD = {
    "timezone": '[ingest]\ntimezone = "Mars/Olympus_Mons"\n',
    "threshold-nan": "[model]\nthreshold = nan\n",
    "threshold-above-1": "[model]\nthreshold = 1.5\n",
    "threshold-inf": "[model]\nthreshold = -inf\n",
    "batch_max_bytes-0": "[watch]\nbatch_max_bytes = 0\n",
    "poll_interval-0": "[watch]\npoll_interval = 0\n",
    "poll_interval-negative": "[watch]\npoll_interval = -1\n",
    "poll_interval-nan": "[watch]\npoll_interval = nan\n",
    "settle_seconds-negative": "[watch]\nsettle_seconds = -1\n",
    "retain_top-negative": "[watch]\nretain_top = -5\n",
    "retain_seconds-inf": "[watch]\nretain_seconds = inf\n",
    "sources_max_pairs-0": "[watch]\nsources_max_pairs = 0\n",
    "glob-empty": '[watch]\nglob = ""\n',
    "observer": '[watch]\nobserver = "magic"\n',
    "state_db-directory": '[watch]\nstate_db = "{tmp}"\n',
    "labels-db-directory": '[labels]\ndb = "{tmp}"\n',
    "outlier_percentile": "[model]\noutlier_percentile = 101\n",
    "classifier": '[model]\nclassifier = "svm"\n',

    "holdout_fraction-1": "[labels]\nholdout_fraction = 1.0\n",
    "analyst_weight-negative": "[labels]\nanalyst_weight = -2\n",
    "normal_scope": '[labels]\nnormal_scope = "planet"\n',
    "refresh_hz-0": "[tui]\nrefresh_hz = 0\n",
    "severity-nan": '[[rules]]\nname = "x"\nlabel = "scan"\nfilter = "proto udp"\nseverity = nan\n',
    "max_ratio-0": "[ingest]\nmax_decompressed_ratio = 0\n",
}
KEY = {
    "timezone": "timezone", "state_db-directory": "state_db", "labels-db-directory": "db",
    "severity-nan": "severity", "max_ratio-0": "max_decompressed_ratio",
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_value_is_refused_at_load_naming_file_and_key(tmp_path, case):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD[case].format(tmp=tmp_path))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert "bad.toml" in message
    key = KEY.get(case, case.split("-")[0])
    assert key in message


@pytest.mark.parametrize("blob", [bytes(range(256)) * 4, b"\xff\xfe[watch]\n", b"\x00" * 50])
def test_a_binary_config_file_is_a_config_error_not_a_traceback(tmp_path, blob):
    cfg = tmp_path / "bin.toml"
    cfg.write_bytes(blob)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "bin.toml" in str(info.value)


def test_a_directory_as_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        load_config(tmp_path)


def test_the_shipped_config_passes_its_own_checks():
    from tests.conftest import ROOT

    load_config(ROOT / "config.toml")
