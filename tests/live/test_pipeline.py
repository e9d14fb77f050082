"""The Pipeline on real files and real threads: snapshots, window context across files,
bounded retention, backpressure, subscribers, model swap, stop."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import polars as pl

from engine.config.settings import Config, WatchConfig
from engine.live.pipeline import Pipeline
from engine.live.sink import JsonlSink
from tests.live.test_tail import dump

WAIT = 30.0  # generous: the machine is shared; nothing here is a speed claim


class BytesScorer:
    """A real scorer (no model needed): big flows are suspicious. Records what it was given."""

    version_ = "bytes-test"
    threshold = 0.5  # the scorer protocol: flagged at score >= threshold

    def __init__(self, cut: int = 1000):
        self.cut = cut
        self.calls: list[tuple[int, int, set[str]]] = []  # (flows, history rows, history files)

    def score(self, flows: pl.DataFrame, history: pl.DataFrame | None = None, rules=None,
              detail: bool = False) -> pl.DataFrame:
        files = set(history["file"].unique()) if history is not None else set()
        self.calls.append((flows.height, 0 if history is None else history.height, files))
        return flows.with_columns(
            score=(pl.col("bytes") > self.cut).cast(pl.Float64),
            verdict=pl.when(pl.col("bytes") > self.cut).then(pl.lit("amplification")).otherwise(pl.lit("normal")),
            reasons=pl.lit("bytes"),
            **({"why": pl.lit(None, pl.String)} if detail else {}),
        )

    def explain(self, flows: pl.DataFrame, history: pl.DataFrame | None = None, rules=None) -> None:
        return None  # the Scorer contract: nothing beyond `reasons`


def config(tmp_path, **watch) -> Config:
    base = dict(settle_seconds=0.2, poll_interval=0.1, state_db=str(tmp_path / "state.sqlite"))
    return Config(watch=dataclasses.replace(WatchConfig(), **{**base, **watch}))


def dumps_dir(tmp_path):
    d = tmp_path / "dumps"
    d.mkdir()
    return d


def test_snapshots_carry_scored_flows_with_stable_ids_and_counters(tmp_path):
    d = dumps_dir(tmp_path)
    (d / "a.txt").write_bytes(dump(200))
    seen: list[int] = []
    pipe = Pipeline(d, config(tmp_path), BytesScorer())
    pipe.subscribe(lambda snap: seen.append(snap.version))
    with pipe:
        snap = pipe.wait_for(lambda s: s.counters.flows == 200, WAIT)
    assert snap is not None and pipe.error is None
    flows = snap.flows
    assert flows["flow_id"].dtype == pl.UInt64 and flows["flow_id"].n_unique() == flows.height
    assert {"score", "verdict", "reasons", "src_addr", "line"} <= set(flows.columns)
    c = snap.counters
    assert c.files == 1 and c.newest_file.endswith("a.txt") and c.model_version == "bytes-test"
    assert c.flagged == int((flows["score"] >= 0.5).sum()) > 0
    assert seen == sorted(seen) and seen[-1] == pipe.latest.version


def test_window_context_carries_across_files(tmp_path):
    d = dumps_dir(tmp_path)
    scorer = BytesScorer()
    with Pipeline(d, config(tmp_path), scorer) as pipe:
        (d / "a.txt").write_bytes(dump(100))
        assert pipe.wait_for(lambda s: s.counters.flows == 100, WAIT)
        (d / "b.txt").write_bytes(dump(100, start=100))
        assert pipe.wait_for(lambda s: s.counters.flows == 200, WAIT)
    # b.txt was scored with a.txt's flows (same minute of traffic) as its window context
    assert any(str(d / "a.txt") in files for n, rows, files in scorer.calls[1:] if rows)


def test_retained_flows_stay_bounded(tmp_path):
    d = dumps_dir(tmp_path)
    (d / "a.txt").write_bytes(dump(600))
    cfg = config(tmp_path, retain_top=25, retain_seconds=0.0)
    with Pipeline(d, cfg, BytesScorer(cut=10**15)) as pipe:  # nothing flagged
        snap = pipe.wait_for(lambda s: s.counters.flows == 600, WAIT)
    assert snap.flows.height == 25
    assert snap.flows["score"].to_list() == sorted(snap.flows["score"].to_list(), reverse=True)


def test_backpressure_reads_big_bursts_in_bounded_batches(tmp_path):
    d = dumps_dir(tmp_path)
    for i in range(4):
        (d / f"{i}.txt").write_bytes(dump(500, start=500 * i))
    scorer = BytesScorer()
    with Pipeline(d, config(tmp_path, batch_max_bytes=16384), scorer) as pipe:
        assert pipe.wait_for(lambda s: s.counters.flows == 2000, WAIT)
    shortest_line = min(len(x) for i in range(4) for x in dump(500, start=500 * i).splitlines()[1:])
    assert max(n for n, _, _ in scorer.calls) <= 16384 // shortest_line
    total = sum((d / f"{i}.txt").stat().st_size for i in range(4))
    assert len(scorer.calls) >= total // 16384


def test_set_scorer_swaps_the_model_for_the_next_batches(tmp_path):
    d = dumps_dir(tmp_path)
    with Pipeline(d, config(tmp_path), BytesScorer(cut=10**15)) as pipe:
        (d / "a.txt").write_bytes(dump(50))
        assert pipe.wait_for(lambda s: s.counters.flows == 50, WAIT)
        assert pipe.latest.counters.flagged == 0
        pipe.set_scorer(BytesScorer(cut=-1))
        (d / "b.txt").write_bytes(dump(50, start=300))
        snap = pipe.wait_for(lambda s: s.counters.flows == 100, WAIT)
    assert snap.counters.flagged == 50


def test_headless_sink_gets_flagged_flows_only_unless_all(tmp_path):
    d = dumps_dir(tmp_path)
    (d / "a.txt").write_bytes(dump(300))
    out = tmp_path / "out.jsonl"
    with Pipeline(d, config(tmp_path), BytesScorer(), sink=JsonlSink(out)) as pipe:
        snap = pipe.wait_for(lambda s: s.counters.flows == 300, WAIT)
    lines = out.read_text().splitlines()
    assert 0 < len(lines) == snap.counters.flagged < 300


def test_stop_finishes_and_a_subscriber_error_does_not_stop_scoring(tmp_path):
    d = dumps_dir(tmp_path)
    (d / "a.txt").write_bytes(dump(100))
    pipe = Pipeline(d, config(tmp_path), BytesScorer())

    def broken(snap):
        raise RuntimeError("subscriber bug")

    pipe.subscribe(broken)
    pipe.start()
    assert pipe.wait_for(lambda s: s.counters.flows == 100, WAIT)
    pipe.stop()
    assert not pipe.running and pipe.error is None
    assert not any(t.name.startswith("flowtriage-") for t in threading.enumerate())
    said, _ = pipe.messages_after(0)
    assert any("subscriber failed: subscriber bug" in m for m in said)


def test_garbage_and_a_vanished_directory_show_in_counters_and_messages(tmp_path):
    d = dumps_dir(tmp_path)
    (d / "junk.txt").write_bytes(b"garbage line\n" * 20)
    with Pipeline(d, config(tmp_path), BytesScorer()) as pipe:
        snap = pipe.wait_for(lambda s: s.counters.skipped_lines == 20, WAIT)
        assert snap is not None and any("junk.txt" in m for m in snap.messages)
        d.rename(tmp_path / "gone")
        snap = pipe.wait_for(lambda s: s.counters.errors >= 1, WAIT)
        assert any("vanished" in m for m in snap.messages)
        (tmp_path / "gone").rename(d)
        (d / "b.txt").write_bytes(dump(10))
        assert pipe.wait_for(lambda s: s.counters.flows == 10, WAIT)


def test_sources_summarise_every_scored_flow_of_the_window_not_only_the_retained(tmp_path):
    from engine.detect.sources import summarize_sources

    d = dumps_dir(tmp_path)
    (d / "a.txt").write_bytes(dump(150))
    (d / "b.txt").write_bytes(dump(150, start=150))
    # a tiny retained view: it holds (almost) only flagged flows, the sources table must not
    with Pipeline(d, config(tmp_path, retain_top=3), BytesScorer(cut=1000)) as pipe:
        snap = pipe.wait_for(lambda s: s.counters.flows == 300, WAIT)
        history = pipe.history
    assert snap is not None and pipe.error is None
    sources = snap.sources
    assert int(sources["flows"].sum()) == 300 > snap.flows.height
    assert 0 < snap.counters.flagged < 300
    # mostly normal traffic reads as mostly normal sources (over the retained flows it was ~100%)
    assert (sources["suspicious_share"] < 1).sum() > sources.height // 2
    assert (sources["top_verdict"] == "normal").sum() > sources.height // 2
    assert sources["suspicious"].sum() == snap.counters.flagged
    assert history is not None and history.height == 300  # the recent raw flows, as the TUI explains them
    every = BytesScorer(cut=1000).score(history)
    expected = summarize_sources(every, threshold=0.5)
    assert sources.drop("activity").sort("src_addr").equals(expected.drop("activity").sort("src_addr"))


def test_stop_twice_is_harmless(tmp_path):
    d = dumps_dir(tmp_path)
    (d / "a.txt").write_bytes(dump(20))
    pipe = Pipeline(d, config(tmp_path), BytesScorer()).start()
    assert pipe.wait_for(lambda s: s.counters.flows == 20, WAIT)
    pipe.stop()
    pipe.stop()
    with pipe:
        pass  # __exit__ stops a third time
    assert not pipe.running and pipe.error is None


def test_sources_past_the_pair_bound_keep_counting_and_say_so(tmp_path):
    d = dumps_dir(tmp_path)
    (d / "a.txt").write_bytes(dump(300))
    with Pipeline(d, config(tmp_path, sources_max_pairs=10), BytesScorer()) as pipe:
        snap = pipe.wait_for(lambda s: s.counters.flows == 300, WAIT)
    assert snap is not None and pipe.error is None
    assert int(snap.sources["flows"].sum()) == 300  # totals stay exact
    assert int(snap.sources["peers"].sum()) + int(snap.sources["dst_ports"].sum()) <= 10
    said, _ = pipe.messages_after(0)
    assert any("peers and dst_ports are lower bounds" in m for m in said)


def test_analyst_labels_apply_to_later_batches_and_to_the_retained_flows(tmp_path):
    """A false positive's vector label quiets its lookalikes on screen at once (reapply) and in
    every later batch, without a retrain; an undo brings the model's verdict back."""
    import shutil

    from engine.feedback.labelstore import LabelStore
    from engine.feedback.suppress import Feedback
    from engine.feedback.vectorkey import vector_keys
    from engine.ingest import read_dump

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "labels"
    first, second = fixtures / "nfcapd.202701110139.txt", fixtures / "nfcapd.202701110140.txt"
    a, b = (read_dump(p, final=True).flows for p in (first, second))
    keys_a, keys_b = vector_keys(a, None), vector_keys(b, a)
    common = keys_a.filter(keys_a.is_in(keys_b.implode()))
    key = common.value_counts(sort=True)["vector_key"][0]  # recurs within a and again in b
    d = dumps_dir(tmp_path)
    store = LabelStore(tmp_path / "labels.sqlite")
    feedback = Feedback(store, threshold=0.5)
    with Pipeline(d, config(tmp_path), BytesScorer(cut=60), feedback=feedback) as pipe:
        shutil.copy(first, d / first.name)
        snap = pipe.wait_for(lambda s: s.counters.flows == 200, WAIT)
        flagged_a = snap.counters.flagged
        alike = snap.flows.filter(pl.col("vector_key") == key)
        assert alike.height >= 2 and (alike["verdict"] == "amplification").all()
        feedback.label(alike.row(0, named=True), "normal", model_version="bytes-test")
        pipe.reapply_feedback()
        alike = pipe.latest.flows.filter(pl.col("vector_key") == key)
        assert (alike["verdict"] == "normal").all() and (alike["score"] <= 0.05).all()
        assert alike["reasons"].str.ends_with("analyst:normal").all()
        assert (alike["model_verdict"] == "amplification").all()

        shutil.copy(second, d / second.name)
        snap = pipe.wait_for(lambda s: s.counters.flows == 400, WAIT)
        later = snap.flows.filter((pl.col("vector_key") == key) & pl.col("file").str.ends_with(second.name))
        assert later.height >= 1 and (later["verdict"] == "normal").all()
        in_b = snap.flows.filter(pl.col("file").str.ends_with(second.name))
        assert snap.counters.flagged == flagged_a + int((in_b["score"] >= 0.5).sum())  # as shown

        feedback.undo()
        pipe.reapply_feedback()
        alike = pipe.latest.flows.filter(pl.col("vector_key") == key)
        assert (alike["verdict"] == "amplification").all() and (alike["score"] == 1.0).all()
    store.close()


def test_a_restart_shows_the_recent_dumps_again_without_counting_or_writing_them(tmp_path):
    # `watch DIR` again after an SSH drop: every dump is checkpointed, so without this the
    # view stays empty until the next rotation (issue 15)
    d = dumps_dir(tmp_path)
    (d / "a.txt").write_bytes(dump(200))
    with Pipeline(d, config(tmp_path), BytesScorer()) as pipe:
        first = pipe.wait_for(lambda s: s.counters.flows == 200, WAIT)
    assert first is not None and first.flows.height > 0
    with Pipeline(d, config(tmp_path), BytesScorer()) as pipe:
        again = pipe.wait_for(lambda s: s.counters.restored_flows == 200, WAIT)
        time.sleep(0.5)  # nothing else arrives: the dump stays read
        latest = pipe.latest
    assert again is not None
    assert set(again.flows["flow_id"]) == set(first.flows["flow_id"])  # the same flows, same ids
    assert latest.counters.flows == 0 and latest.counters.flagged == 0  # not counted again
    assert any("restored the view after a restart: 200 flows of 1 dump" in m for m in latest.messages)
