"""The tailer against hostile or unlucky input: over-long lines, compression that the name
does not announce, writers that pause mid-line, compressed files cut short."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import time

import pytest
import zstandard

from engine.config.settings import WatchConfig
from engine.live.state import StateStore
from engine.live.tail import Tailer
from tests.live_writer import sample_lines

HEADER, POOL = sample_lines()


def dump(n: int, start: int = 0) -> bytes:
    return HEADER + b"".join(POOL[start:start + n])


def make(tmp_path, directory, *, settle=0.0):
    state = StateStore(tmp_path / "state.sqlite", "test")
    return Tailer(directory, WatchConfig(settle_seconds=settle, poll_interval=0.1), state), state


def drain(tailer, state, *, max_bytes=1 << 20, polls=50):
    """Poll (committing as the pipeline does) until a poll brings nothing; all flows + skips."""
    flows, skipped, messages = [], [], []
    for _ in range(polls):
        batch = tailer.poll(max_bytes)
        state.commit(list(batch.checkpoints), None)
        flows.extend(zip(batch.flows["file"].to_list(), batch.flows["line"].to_list(), strict=True))
        skipped.extend(batch.skipped)
        messages.extend(batch.messages)
        if batch.flows.height == 0 and not batch.more and not batch.checkpoints:
            break
    return flows, skipped, messages


@pytest.fixture
def d(tmp_path):
    path = tmp_path / "dumps"
    path.mkdir()
    return path


@pytest.mark.parametrize("newline", [True, False], ids=["terminated", "never-terminated"])
def test_a_line_longer_than_the_batch_budget_is_skipped_and_newer_dumps_are_read(tmp_path, d, newline):
    tailer, state = make(tmp_path, d)
    # 3 MiB of zeros, as a zero-filled file (the issue had 40 MB), against a 1 MiB budget
    long = HEADER + b"\0" * (3 << 20) + (b"\n" + b"".join(POOL[:5]) if newline else b"")
    (d / "a-zeros.txt").write_bytes(long)
    os.utime(d / "a-zeros.txt", (time.time() - 10, time.time() - 10))
    (d / "b-good.txt").write_bytes(dump(20))
    flows, skipped, _ = drain(tailer, state)
    b = sorted(line for f, line in flows if f.endswith("b-good.txt"))
    assert b == list(range(2, 22))
    a = sorted(line for f, line in flows if f.endswith("a-zeros.txt"))
    assert a == (list(range(3, 8)) if newline else [])
    long_skips = [s for s in skipped if s.file.endswith("a-zeros.txt") and s.line == 2]
    assert len(long_skips) == 1 and "long" in long_skips[0].reason


def test_the_over_long_line_is_skipped_once_across_a_restart(tmp_path, d):
    tailer, state = make(tmp_path, d)
    (d / "a.txt").write_bytes(HEADER + b"x" * (3 << 20))  # still being written: no newline yet
    _, skipped, _ = drain(tailer, state)
    tailer.stop()
    state.close()
    assert [s.line for s in skipped] == [2]
    with open(d / "a.txt", "ab") as fh:
        fh.write(b"x" * 1000 + b"\n" + b"".join(POOL[:3]))
    tailer, state2 = make(tmp_path, d)
    flows, skipped, _ = drain(tailer, state2)
    assert sorted(line for _, line in flows) == [3, 4, 5]
    assert skipped == []


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


CODECS = {
    "gz": _gz,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("codec", list(CODECS))
def test_compression_is_decided_by_content_not_by_name(tmp_path, d, codec):
    tailer, state = make(tmp_path, d)
    (d / "nfcapd.202701010000").write_bytes(CODECS[codec](dump(30)))  # no suffix at all
    flows, skipped, _ = drain(tailer, state)
    assert sorted(line for _, line in flows) == list(range(2, 32))
    assert skipped == []


def test_a_gz_tmp_written_slowly_then_renamed_loses_and_repeats_nothing(tmp_path, d):
    tailer, state = make(tmp_path, d)
    text = dump(400)
    data = _gz(text)
    tmp = d / "nfcapd.202701010000.txt.gz.tmp"
    seen = []
    step = max(1, len(data) // 7)
    for i in range(0, len(data), step):
        with open(tmp, "ab") as fh:
            fh.write(data[i:i + step])
        flows, _, _ = drain(tailer, state, polls=3)
        seen.extend(line for _, line in flows)
    final = d / "nfcapd.202701010000.txt.gz"
    os.rename(tmp, final)
    flows, _, _ = drain(tailer, state)
    seen.extend(line for _, line in flows)
    assert sorted(seen) == list(range(2, 402))  # every flow once, at its own line


def test_a_writer_pausing_mid_line_longer_than_settle_does_not_split_the_line(tmp_path, d):
    tailer, state = make(tmp_path, d, settle=0.2)
    text = dump(10)
    cut = len(dump(6)) + 25  # inside line 8 of the file
    (d / "a.txt").write_bytes(text[:cut])
    first, _, _ = drain(tailer, state)
    time.sleep(0.5)  # longer than settle_seconds
    paused, skipped, _ = drain(tailer, state)
    with open(d / "a.txt", "ab") as fh:
        fh.write(text[cut:])
    rest, _, _ = drain(tailer, state)
    lines = [line for _, line in first + paused + rest]
    assert sorted(lines) == list(range(2, 12))
    assert skipped == []


@pytest.mark.parametrize("codec", list(CODECS))
def test_a_truncated_compressed_dump_keeps_its_flows_and_is_reported(tmp_path, d, codec):
    tailer, state = make(tmp_path, d)
    text = dump(2000)
    data = CODECS[codec](text)
    (d / "cut.txt").write_bytes(data[: len(data) // 2])
    (d / "good.txt").write_bytes(dump(10))
    flows, _, messages = drain(tailer, state)
    cut = sorted(line for f, line in flows if f.endswith("cut.txt"))
    good = sorted(line for f, line in flows if f.endswith("good.txt"))
    assert good == list(range(2, 12))
    assert cut == list(range(2, 2 + len(cut)))  # a prefix, nothing invented
    if codec in ("gz", "xz"):  # bz2 and zstd decode whole blocks: half of one gives nothing
        assert cut
    assert any("cut.txt" in m and "truncated" in m for m in messages), messages


def test_a_truncated_compressed_dump_does_not_count_as_lag_for_ever(tmp_path, d):
    tailer, state = make(tmp_path, d)
    data = _gz(dump(2000))
    (d / "cut.txt.gz").write_bytes(data[: len(data) // 2])
    os.utime(d / "cut.txt.gz", (time.time() - 600, time.time() - 600))
    drain(tailer, state)
    assert tailer.backlog_since is None  # nothing more can be read until it changes


def test_identical_truncated_gz_files_do_not_block_each_other(tmp_path, d):
    """Found by the soak: a truncated .gz was taken as the twin of its identical copies, which
    then waited for it to finish, for ever (and counted as lag)."""
    tailer, state = make(tmp_path, d)
    data = _gz(dump(2000))
    for name in ("cut-a.gz", "cut-b.gz", "cut-c.gz"):
        (d / name).write_bytes(data[: len(data) // 2])
    flows, _, messages = drain(tailer, state)
    for name in ("cut-a.gz", "cut-b.gz", "cut-c.gz"):
        assert any(name in m and "ends early" in m for m in messages), (name, messages)
    assert tailer.backlog_since is None
