"""`flowtriage rules`: lists the configured rules, names a bad one, checks a filter."""

from __future__ import annotations

import pytest

from engine.cli.entry import main
from engine.config.settings import ConfigError, load_config

BAD_CONFIG = """
[[rules]]
name = "fine"
label = "scan"
severity = 0.5
filter = "proto tcp and dst port 53"

[[rules]]
name = "typo"
label = "tunnel"
severity = 0.6
filter = "proto udp and byts > 150"
"""


def test_lists_the_default_rules(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./config.toml here: the packaged defaults
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["rules"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "label", "severity", "filter"]
    assert [line.split()[0] for line in out[1:]] == ["amplification", "scan", "zero_packet", "open_resolver", "tunnel"]


def test_a_bad_rule_is_reported_with_file_rule_and_caret(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(BAD_CONFIG)
    assert main(["rules", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"flowtriage rules: {config} [[rules]] #2: rule 'typo': bad filter: unknown keyword 'byts'" in err
    assert "  proto udp and byts > 150\n" in err
    assert "\n                ^" in err


def test_check_prints_the_normal_form_or_the_error(capsys):
    assert main(["rules", "--check", "PORT 53 && bytes > 1k"]) == 0
    assert capsys.readouterr().out.strip() == "(src port = 53 or dst port = 53) and bytes > 1000"
    assert main(["rules", "--check", "port 53 and"]) == 2
    assert "expected a filter primitive after 'and'" in capsys.readouterr().err


def test_load_config_rejects_a_bad_rule_with_number_name_and_caret(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(BAD_CONFIG)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"{config} [[rules]] #2: rule 'typo': bad filter: unknown keyword 'byts'")
    assert lines[1:] == ["  proto udp and byts > 150", "                ^"]


def test_load_config_rejects_duplicate_rule_names(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(BAD_CONFIG.replace('"typo"', '"fine"').replace("byts", "bytes"))
    with pytest.raises(ConfigError, match=r"#2: rule 'fine': duplicate rule name"):
        load_config(config)
