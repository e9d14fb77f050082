"""summarize_sources(): per-source totals, suspicion, top verdict and activity buckets."""

from datetime import datetime, timedelta

import polars as pl

from engine.sources import SOURCE_SCHEMA, summarize_sources

T0 = datetime(2026, 11, 22, 8, 35)


def _scored(rows):
    # rows: (seconds after T0, src, dst, dst_port, bytes, score, verdict)
    return pl.DataFrame(
        {
            "ts_first": [T0 + timedelta(seconds=r[0]) for r in rows],
            "ts_last": [T0 + timedelta(seconds=r[0] + 1) for r in rows],
            "src_addr": [r[1] for r in rows],
            "dst_addr": [r[2] for r in rows],
            "dst_port": [r[3] for r in rows],
            "packets": [1] * len(rows),
            "bytes": [r[4] for r in rows],
            "score": [r[5] for r in rows],
            "verdict": [r[6] for r in rows],
        }
    ).with_columns(pl.col("ts_first", "ts_last").cast(pl.Datetime("ms")))


SCORED = _scored(
    [
        (0, "10.0.0.5", "10.0.0.53", 53, 60, 0.1, "normal"),
        (10, "10.0.0.5", "10.0.0.53", 53, 70, 0.9, "scan"),
        (20, "10.0.0.5", "10.0.0.54", 54, 80, 0.8, "scan"),
        (30, "10.0.0.5", "10.0.0.55", 55, 90, 0.7, "dns_flood"),
        (40, "10.0.0.5", "10.0.0.53", 53, 60, 0.2, "normal"),
        (5, "10.0.0.9", "10.0.0.53", 53, 100, 0.3, "normal"),
        (6, "10.0.0.9", "10.0.0.53", 53, 100, 0.45, "tunnel"),  # below threshold
    ]
)


def test_totals_and_suspicion_per_source():
    out = summarize_sources(SCORED, threshold=0.5, buckets=4)
    assert out.schema == pl.Schema(SOURCE_SCHEMA)
    first, second = out.rows(named=True)
    assert first["src_addr"] == "10.0.0.5"  # highest max score first
    assert (first["flows"], first["bytes"], first["peers"], first["dst_ports"]) == (5, 360, 3, 3)
    assert first["suspicious"] == 3 and first["suspicious_share"] == 0.6
    assert first["top_verdict"] == "scan" and first["max_score"] == 0.9
    assert first["first_seen"] == T0 and first["last_seen"] == T0 + timedelta(seconds=41)
    assert second["top_verdict"] == "normal" and second["suspicious_share"] == 0.0


def test_activity_spans_each_source_or_a_shared_window():
    own = summarize_sources(SCORED, threshold=0.5, buckets=4)
    assert own["activity"].to_list() == [[1, 1, 1, 2], [1, 0, 0, 1]]
    shared = summarize_sources(SCORED, threshold=0.5, buckets=4, window=(T0, T0 + timedelta(seconds=20)))
    # Only flows inside the window are bucketed; totals still count everything.
    assert shared["activity"].to_list() == [[1, 0, 1, 1], [0, 2, 0, 0]]
    assert shared["flows"].to_list() == [5, 2]


def test_top_verdict_ties_break_by_name():
    out = summarize_sources(
        _scored([(0, "a", "b", 53, 1, 0.9, "tunnel"), (1, "a", "b", 53, 1, 0.9, "scan")]),
        threshold=0.5,
    )
    assert out["top_verdict"].to_list() == ["scan"]
    assert sum(out["activity"][0]) == 2 and len(out["activity"][0]) == 12


def test_empty_input_gives_an_empty_typed_frame():
    out = summarize_sources(SCORED.head(0), threshold=0.5)
    assert out.height == 0 and out.schema == pl.Schema(SOURCE_SCHEMA)


def test_printed_table_is_inert_and_narrow():
    from engine.commands.sources import format_sources

    hostile = SCORED.with_columns(
        pl.when(pl.col("src_addr") == "10.0.0.9")
        .then(pl.lit("10.0.0.9\x1b[2J\x1b]0;owned\x07"))
        .otherwise(pl.col("src_addr"))
        .alias("src_addr")
    )
    text = format_sources(summarize_sources(hostile, threshold=0.5))
    assert "\x1b" not in text and "\x07" not in text
    assert "10.0.0.9\\x1b[2J" in text
    lines = text.splitlines()
    assert lines[0].startswith("source") and len(lines) == 3
    plain = format_sources(summarize_sources(SCORED, threshold=0.5)).splitlines()
    assert max(len(line) for line in plain) <= 100
