"""Reading a dump in appended chunks gives exactly the frame of reading it whole."""

from __future__ import annotations

import gzip
import random

import pytest
from polars.testing import assert_frame_equal

from engine.ingest import Cursor, read_dump
from tests.conftest import FIXTURES

CASES = [
    FIXTURES / "formats" / "isp-port53.nfdump-1.7.1.extended.txt.gz",
    FIXTURES / "formats" / "isp-port53.nfdump-1.7.1.csv.txt.gz",
    FIXTURES / "formats" / "small-lzo.nfdump-1.7.1.json.txt.gz",
    FIXTURES / "formats" / "small-lzo.nfdump-1.7.8.ndjson.txt.gz",
    FIXTURES / "formats" / "small-lzo.nfdump-1.7.8.csv-fast.txt.gz",
    FIXTURES / "real" / "out1.gz",
]


@pytest.mark.parametrize("source", CASES, ids=lambda p: p.name)
def test_appended_chunks_equal_whole_read(tmp_path, source):
    data = gzip.decompress(source.read_bytes())
    path = tmp_path / "dump.txt"
    whole = read_dump(_write(path, data), final=True)
    rng = random.Random(7)
    path.write_bytes(b"")
    cursor, frames, skipped, written = Cursor(), [], [], 0
    while written < len(data):
        written = min(len(data), written + rng.randint(1, max(2, len(data) // 8)))
        path.write_bytes(data[:written])
        result = read_dump(path, cursor, final=written == len(data))
        cursor = result.cursor
        frames.append(result.flows)
        skipped.extend(result.skipped)
    import polars as pl

    assert_frame_equal(pl.concat(frames), whole.flows)
    assert skipped == list(whole.skipped)
    assert cursor.offset == len(data)


def test_max_bytes_caps_each_read(tmp_path):
    data = gzip.decompress(
        (FIXTURES / "formats" / "isp-port53.nfdump-1.7.1.extended.txt.gz").read_bytes()
    )
    path = _write(tmp_path / "d.txt", data)
    cursor, total, calls = Cursor(), 0, 0
    while cursor.offset < len(data):
        result = read_dump(path, cursor, final=True, max_bytes=20_000)
        assert result.cursor.offset - cursor.offset <= 20_000
        cursor, total, calls = result.cursor, total + result.flows.height, calls + 1
    assert total == 1075 and calls > 5


@pytest.mark.parametrize("name", ["d.txt", "d.txt.gz"])
def test_max_bytes_shorter_than_a_line_reads_one_whole_line_per_call(tmp_path, name):
    import polars as pl

    from engine.ingest import parse_bytes

    data = gzip.decompress(CASES[0].read_bytes())
    data = b"".join(data.splitlines(keepends=True)[:40]) + b"2024-03-10 a malformed line\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    whole = parse_bytes(data, file=str(path), final=True)
    cursor, frames, skipped = Cursor(), [], []
    while cursor.offset < len(data):
        result = read_dump(path, cursor, final=True, max_bytes=10)
        assert result.cursor.line == cursor.line + 1, "not one whole line"
        cursor = result.cursor
        frames.append(result.flows)
        skipped.extend(result.skipped)
    assert_frame_equal(pl.concat(frames), whole.flows)
    assert skipped == list(whole.skipped) and len(skipped) == 2  # the header, the bad line
    assert cursor.line == 41


def test_a_line_longer_than_max_bytes_is_read_whole_after_the_lines_before_it(tmp_path):
    lines = gzip.decompress(CASES[0].read_bytes()).splitlines(keepends=True)
    header, flow = lines[0], lines[1]
    data = header + b"x" * 30_000 + b"\n" + flow * 3
    path = _write(tmp_path / "d.txt", data)
    first = read_dump(path, final=True, max_bytes=20_000)
    assert first.cursor.offset == len(header)  # only whole lines within the budget
    second = read_dump(path, first.cursor, final=True, max_bytes=20_000)
    assert second.cursor.offset == len(header) + 30_001 and second.flows.height == 0
    third = read_dump(path, second.cursor, final=True, max_bytes=20_000)
    assert third.cursor.offset == len(data) and third.flows.height == 3


def test_a_line_longer_than_max_line_bytes_is_skipped_in_bounded_pieces(tmp_path):
    """Longer than MAX_LINE_BYTES (no flow line comes near it): counted as one skipped line,
    passed over in budget-sized pieces, never held in memory whole; the flows after it keep
    their line numbers."""
    from engine.ingest.reader import MAX_LINE_BYTES

    lines = gzip.decompress(CASES[0].read_bytes()).splitlines(keepends=True)
    header, flow = lines[0], lines[1]
    data = header + b"x" * (3 * MAX_LINE_BYTES) + b"\n" + flow * 3
    path = _write(tmp_path / "d.txt", data)
    cursor, flows, skipped, calls = None, [], [], 0
    while cursor is None or cursor.offset < len(data):
        result = read_dump(path, cursor, final=True, max_bytes=MAX_LINE_BYTES)
        assert result.cursor.offset - (cursor.offset if cursor else 0) <= MAX_LINE_BYTES + 1
        cursor, calls = result.cursor, calls + 1
        flows.extend(result.flows["line"].to_list())
        skipped.extend(s for s in result.bad_lines)
    assert flows == [3, 4, 5]
    assert [(s.line, s.text[:3]) for s in skipped] == [(2, "xxx")]
    assert "too long" in skipped[0].reason
    assert read_dump(path, final=True).flows["line"].to_list() == [3, 4, 5]


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("source", CASES, ids=lambda p: p.name)
def test_small_chunks_and_parallel_stitching_equal_one_pass(tmp_path, monkeypatch, source):
    from engine.ingest import parse_bytes, reader

    data = gzip.decompress(source.read_bytes())
    # two different dumps back to back: the second header switches layout mid-file
    other = gzip.decompress(
        (FIXTURES / "formats" / "small-lzo.nfdump-1.7.8.csv.txt.gz").read_bytes()
    )
    data = data + other + data
    path = _write(tmp_path / "d.txt", data)
    whole = parse_bytes(data, file=str(path), final=True)
    monkeypatch.setattr(reader, "CHUNK_BYTES", 4096)
    chunked = read_dump(path, final=True)
    assert_frame_equal(chunked.flows, whole.flows)
    assert chunked.skipped == whole.skipped
    assert chunked.cursor == whole.cursor


def test_a_line_longer_than_a_chunk_does_not_stall_the_reader(tmp_path, monkeypatch):
    from engine.ingest import reader

    monkeypatch.setattr(reader, "CHUNK_BYTES", 4096)
    data = gzip.decompress(
        (FIXTURES / "formats" / "small-lzo.nfdump-1.7.1.line.txt.gz").read_bytes()
    )
    head, _, rest = data.partition(b"\n")
    path = _write(tmp_path / "d.txt", head + b"\n" + b"x" * 20000 + b"\n" + rest)
    result = read_dump(path, final=True)
    assert result.flows.height == 10
    assert [s.line for s in result.skipped if s.reason == "not a flow record"] == [2]
    assert result.cursor.offset == path.stat().st_size
