"""SQLite checkpoints and the JSONL sink: what makes a kill at any instant lose and repeat nothing."""

from __future__ import annotations

import json

import polars as pl
import pytest

from engine.core.schema import SCORED_SCHEMA
from engine.live.sink import JsonlSink
from engine.live.state import Checkpoint, StateLocked, StateStore
from engine.live.tail import Cursor, parse_bytes
from tests.live.test_tail import dump, make_tailer
from tests.live_writer import sample_lines


def test_checkpoints_and_output_length_are_committed_together(tmp_path):
    state = StateStore(tmp_path / "s.sqlite", "jsonl:/out")
    uid = state.add(1, 2, "/d/a.txt")
    state.commit([Checkpoint(uid, Cursor(100, 3).to_json(), 100, "ab", False)], 4096)
    state.close()
    again = StateStore(tmp_path / "s.sqlite", "jsonl:/out")
    (rec,) = again.records()
    assert (rec.uid, rec.dev, rec.ino, rec.name, rec.done) == (uid, 1, 2, "/d/a.txt", False)
    assert Cursor.from_json(rec.cursor) == Cursor(100, 3)
    assert again.out_length() == 4096


def test_one_watcher_per_sink(tmp_path):
    first = StateStore(tmp_path / "s.sqlite", "jsonl:/a")
    with pytest.raises(StateLocked):
        StateStore(tmp_path / "s.sqlite", "jsonl:/a")
    other = StateStore(tmp_path / "s.sqlite", "view")  # another sink has its own checkpoints
    assert other.records() == []
    first.close()
    StateStore(tmp_path / "s.sqlite", "jsonl:/a").close()


def test_wal_mode(tmp_path):
    import sqlite3

    StateStore(tmp_path / "s.sqlite", "x").close()
    mode = sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def _scored(n: int) -> pl.DataFrame:
    flows = parse_bytes(dump(n), file="a.txt", final=True).flows
    return flows.with_columns(score=pl.lit(0.9), verdict=pl.lit("scan"), reasons=pl.lit("rule scan"))


def test_the_sink_cuts_what_was_written_after_the_last_commit(tmp_path):
    out = tmp_path / "out.jsonl"
    sink = JsonlSink(out)
    assert sink.open(0) is None
    committed = sink.append(_scored(5))
    sink.append(_scored(3))  # written, then killed before its checkpoint committed
    sink.close()
    again = JsonlSink(out)
    note = again.open(committed)
    assert "cut" in note and out.stat().st_size == committed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5
    assert rows[0]["ts_first"].count("T") == 1 and rows[0]["verdict"] == "scan"
    assert set(rows[0]) == set(SCORED_SCHEMA)


def test_a_sink_shorter_than_its_checkpoint_is_reported(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"")
    note = JsonlSink(out).open(1000)
    assert "shorter than its checkpoint" in note


def test_fully_read_files_are_not_read_again_after_a_restart(tmp_path):
    d = tmp_path / "dumps"
    d.mkdir()
    (d / "a.txt").write_bytes(dump(30))
    tailer, state = make_tailer(tmp_path, d)
    batch = tailer.poll(1 << 20)
    state.commit(list(batch.checkpoints), None)
    tailer.stop()
    state.close()
    tailer, state = make_tailer(tmp_path, d)
    assert tailer.poll(1 << 20).flows.height == 0
    assert sample_lines()[0].startswith(b"Date first seen")
