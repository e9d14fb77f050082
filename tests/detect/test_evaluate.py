"""evaluate(): the figures eval prints, checked on cases small enough to count by hand."""

import json

import polars as pl
import pytest

from engine.detect.evaluate import evaluate, format_report

TRUTH = pl.Series(["normal", "normal", "normal", "normal", "scan", "scan", "tunnel", None])
VERDICT = pl.Series(["normal", "normal", "normal", "scan", "scan", "normal", "tunnel", "scan"])
SCORE = pl.Series([0.1, 0.2, 0.3, 0.7, 0.9, 0.4, 0.8, 0.99])


@pytest.fixture
def report():
    return evaluate(TRUTH, VERDICT, SCORE, n=(2, 4))


def test_counts_and_confusion_in_vocabulary_order(report):
    assert report.labelled == 7 and report.unlabelled == 1
    assert report.classes == ("normal", "tunnel", "scan")
    assert report.confusion == ((3, 0, 1), (0, 1, 0), (1, 0, 1))


def test_per_class_and_macro_f1(report):
    scan = report.per_class["scan"]
    assert (scan.precision, scan.recall, scan.support) == (0.5, 0.5, 2)
    assert report.per_class["normal"].recall == 0.75
    assert report.per_class["tunnel"].f1 == 1.0
    assert report.macro_f1 == pytest.approx((0.75 + 1.0 + 0.5) / 3)
    assert report.accuracy == pytest.approx(5 / 7)


def test_ranking_figures(report):
    # Scores of attacks: 0.9, 0.4, 0.8; of normals: 0.1, 0.2, 0.3, 0.7 -> 11 of 12 pairs ordered.
    assert report.roc_auc == pytest.approx(11 / 12)
    assert report.precision_at == {2: 1.0, 4: 0.75}
    assert report.normal_flagged == 0.25 and report.normal_total == 4
    assert report.top_confusions == (("normal", "scan", 1), ("scan", "normal", 1))


def test_anomaly_verdicts_count_as_flagged_and_get_a_column():
    r = evaluate(pl.Series(["normal", "normal"]), pl.Series(["anomaly", "normal"]), pl.Series([0.9, 0.1]))
    assert r.classes == ("normal", "anomaly")
    assert r.normal_flagged == 0.5
    assert r.roc_auc is None  # one side only: undefined, not a made-up number
    assert list(r.per_class) == ["normal"]


def test_explicit_classes_fix_the_order():
    r = evaluate(pl.Series(["scan"]), pl.Series(["scan"]), pl.Series([1.0]), classes=["scan", "normal"])
    assert r.classes == ("scan", "normal") and r.confusion == ((1, 0), (0, 0))


def test_report_text_fits_100_columns_and_json_round_trips(report):
    text = format_report(report)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "macro-F1 0.7500" in text and "ROC AUC (attack vs normal) 0.9167" in text
    assert "normal -> scan: 1" in text
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["confusion"][0] == [3, 0, 1]
    assert as_json["per_class"]["scan"]["support"] == 2
    assert as_json["precision_at"] == {"2": 1.0, "4": 0.75}


def test_every_class_fits_in_100_columns():
    labels = ["normal", "dns_flood", "amplification", "tunnel", "scan", "zero_packet",
              "open_resolver", "anomaly"]
    truth = pl.Series(labels * 20000)
    verdict = pl.Series(labels[1:] + labels[:1]).extend(pl.Series(labels * 19999))
    r = evaluate(truth, verdict, pl.Series([0.5] * truth.len()))
    assert max(len(line) for line in format_report(r).splitlines()) <= 100
