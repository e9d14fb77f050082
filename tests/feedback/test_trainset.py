"""Training labels: analyst > labels file > rule > normal, with each flow's origin."""

import polars as pl

from engine.feedback.targets import analyst_labels, assemble_labels


def test_precedence_and_origins():
    analyst = pl.Series([None, "tunnel", None, None, "anomaly"], dtype=pl.String)
    from_file = pl.Series(["scan", "normal", None, None, None], dtype=pl.String)
    rules = pl.Series(["zero_packet", "scan", "amplification", None, "scan"], dtype=pl.String)
    result = assemble_labels(5, analyst=analyst, labels_file=from_file, rules=rules)
    assert result.labels.to_list() == ["scan", "tunnel", "amplification", "normal", "scan"]
    assert result.origin.to_list() == ["file", "analyst", "rule", "default", "rule"]
    assert result.counts() == {"scan": 2, "tunnel": 1, "amplification": 1, "normal": 1}
    assert result.origin_counts()["rule"] == 2


def test_no_sources_means_everything_is_normal():
    result = assemble_labels(3)
    assert result.labels.to_list() == ["normal"] * 3
    assert result.origin_counts() == {"default": 3}


def test_no_label_store_file_means_no_analyst_labels(tmp_path):
    flows = pl.DataFrame({"file": ["a.txt"], "line": [2]})
    assert analyst_labels(flows, tmp_path / "labels.sqlite") is None
    assert not (tmp_path / "labels.sqlite").exists()  # never created just by looking
