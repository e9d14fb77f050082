import dataclasses

import pytest

from engine.config.settings import Config, ConfigError, load_config, parse_config
from tests.conftest import ROOT


def test_repo_config_equals_packaged_defaults():
    loaded = load_config(ROOT / "config.toml")
    assert dataclasses.replace(loaded, source=None) == Config()
    assert [r.name for r in loaded.rules] == [
        "amplification", "scan", "zero_packet", "open_resolver", "tunnel"
    ]


def test_unknown_key_is_named_with_the_file(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[watch]\nglobb = '*.txt'\n")
    with pytest.raises(ConfigError, match=r"c\.toml \[watch\]: unknown key\(s\) globb"):
        load_config(bad)


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match=r"refresh_hz: expected float, got str"):
        parse_config({"tui": {"refresh_hz": "fast"}})


def test_ints_are_accepted_for_floats_and_lists_become_tuples():
    c = parse_config({"tui": {"refresh_hz": 1}, "labels": {"extra_classes": ["c2"]}})
    assert c.tui.refresh_hz == 1.0 and c.labels.extra_classes == ("c2",)


def test_broken_toml_names_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[watch\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_config(bad)


def test_config_before_the_command_is_not_taken_for_the_command(tmp_path, capsys):
    from engine.cli.entry import main

    cfg = tmp_path / "c.toml"
    cfg.write_text("[tui]\nrefresh_hz = 1\n")
    assert main(["--config", str(cfg), "rules"]) == 0
    assert "amplification" in capsys.readouterr().out
