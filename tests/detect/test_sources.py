"""summarize_sources(): per-source totals, suspicion, top verdict and activity buckets."""

from datetime import datetime, timedelta

import polars as pl

from engine.detect.sources import SOURCE_SCHEMA, summarize_sources

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
    from engine.cli.commands.sources import format_sources

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


def _random_flows(n: int, seed: int, span_s: int) -> pl.DataFrame:
    """Scored flows with repeated sources, peers and ports, a null peer, ties in verdict counts."""
    import random

    rnd = random.Random(seed)
    verdicts = ["normal", "scan", "dns_flood", "tunnel"]
    rows = [
        (
            rnd.randrange(span_s * 1000) / 1000,
            f"10.0.0.{rnd.randrange(12)}",
            None if rnd.random() < 0.02 else f"10.1.0.{rnd.randrange(20)}",
            rnd.choice([53, 53, 5353, 1024 + rnd.randrange(8)]),
            rnd.randrange(40, 4000),
            round(rnd.random(), 2),
            rnd.choice(verdicts),
        )
        for _ in range(n)
    ]
    return _scored(rows).with_columns(
        packets=pl.col("bytes") // 40,
        ts_last=pl.col("ts_first") + pl.duration(milliseconds=pl.col("bytes")),
    )


def _window_flows(flows: pl.DataFrame, window) -> pl.DataFrame:
    start, end = window
    return flows.filter((pl.col("ts_first") >= start) & (pl.col("ts_first") < end))


def test_source_window_equals_summarize_sources_over_the_window_flows():
    from engine.live.source_window import SourceWindow

    flows = _random_flows(3000, seed=7, span_s=2400)  # 40 min of flow time, window 15 min
    win = SourceWindow(900, threshold=0.5, buckets=12)
    assert win.snapshot().schema == pl.Schema(SOURCE_SCHEMA) and win.window is None
    # batches out of time order: the middle first, then the start (mostly too old by then,
    # except what is still inside), then the end, which rolls the window forward
    ordered = flows.sort("ts_first")
    batches = [ordered.slice(1000, 700).sample(fraction=1.0, shuffle=True, seed=1),
               ordered.slice(0, 1000), ordered.slice(2400, 600), ordered.slice(1700, 700)]
    windows = []
    for batch in batches:
        win.add(batch)
        windows.append(win.window)
    start, end = win.window
    assert end - start == timedelta(seconds=900)
    assert windows[0] != windows[-1] and windows[2] == windows[3]  # rolled forward, then held
    expected = summarize_sources(_window_flows(flows, win.window), threshold=0.5, window=(start, end), buckets=12)
    got = win.snapshot()
    assert not win.overflowed
    assert got.height == expected.height > 5
    assert got.equals(expected)
    assert 0 < got["suspicious_share"].min() and got["suspicious_share"].max() < 1


def test_source_window_drops_too_old_flows_and_rolls_off_buckets():
    from engine.live.source_window import SourceWindow

    win = SourceWindow(60, threshold=0.5, buckets=4)  # 15 s buckets
    win.add(_scored([(0, "10.0.0.1", "10.0.0.53", 53, 60, 0.9, "scan")]))
    assert win.snapshot()["src_addr"].to_list() == ["10.0.0.1"]
    win.add(_scored([(100, "10.0.0.2", "10.0.0.53", 53, 60, 0.1, "normal")]))
    win.add(_scored([(1, "10.0.0.3", "10.0.0.53", 53, 60, 0.9, "scan")]))  # older than the window
    out = win.snapshot()
    assert out["src_addr"].to_list() == ["10.0.0.2"]
    assert win.window == (T0 + timedelta(seconds=45), T0 + timedelta(seconds=105))  # ends with 100 s's bucket
    assert out["activity"].to_list() == [[0, 0, 0, 1]]
    assert out["top_verdict"].to_list() == ["normal"] and out["suspicious_share"].to_list() == [0.0]


def test_source_window_bounds_distinct_pairs_and_says_so():
    from engine.live.source_window import SourceWindow

    flows = _random_flows(500, seed=3, span_s=60)
    win = SourceWindow(900, threshold=0.5, max_pairs=50)
    for part in flows.iter_slices(100):
        win.add(part)
    assert win.overflowed and win.pairs <= 50
    full = summarize_sources(flows, threshold=0.5, window=win.window)
    got = win.snapshot()
    # totals stay exact; distinct counts become lower bounds
    assert got.select("src_addr", "flows", "bytes", "suspicious").equals(full.select("src_addr", "flows", "bytes", "suspicious"))
    assert (got["peers"] <= full["peers"]).all() and got["peers"].sum() < full["peers"].sum()
    # once the buckets with unrecorded pairs leave the window, the counts are exact again
    later = _random_flows(10, seed=4, span_s=5).with_columns(
        pl.col("ts_first", "ts_last").dt.offset_by("2h"))
    win.add(later)
    assert not win.overflowed
    assert win.snapshot().equals(summarize_sources(later, threshold=0.5, window=win.window))
