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


def test_scope_defaults_to_port_53_with_icmp_errors_and_probers():
    scope = Config().scope
    assert (scope.filter, scope.icmp_errors, scope.prober_targets) == ("port 53", True, 3)


def test_a_bad_scope_filter_fails_at_load_with_its_position(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[scope]\nfilter = "port 53 or prot udp"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "c.toml [scope].filter" in text and "bad filter" in text
    assert "^" in text and "position" in text


@pytest.mark.parametrize("raw, problem", [
    ({"scope": {"filter": "  "}}, "empty filter"),
    ({"scope": {"prober_targets": -1}}, "whole number"),
    ({"ingest": {"sampling": -3}}, "whole number"),
])
def test_scope_and_sampling_values_are_checked(raw, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_config(raw)
