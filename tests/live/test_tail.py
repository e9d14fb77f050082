"""The Tailer over real dump text: growth, partial lines, rename, truncation, deletion,
compression, restarts and bad input, driven by explicit polls (no threads, no timers)."""

from __future__ import annotations

import gzip
import os
import time

import pytest

from engine.config.settings import WatchConfig
from engine.live.state import StateStore
from engine.live.tail import Tailer
from tests.live_writer import sample_lines

HEADER, POOL = sample_lines()


def dump(n: int, start: int = 0) -> bytes:
    return HEADER + b"".join(POOL[start:start + n])


def lines_of(batch) -> list[int]:
    return batch.flows["line"].to_list()


@pytest.fixture
def watch_dir(tmp_path):
    d = tmp_path / "dumps"
    d.mkdir()
    return d


def make_tailer(tmp_path, directory, *, settle=0.0, sink="test", **kw):
    state = StateStore(tmp_path / "state.sqlite", sink)
    tailer = Tailer(directory, WatchConfig(settle_seconds=settle, poll_interval=0.1), state, **kw)
    return tailer, state


def poll(tailer, state, max_bytes=1 << 24):
    """One poll whose checkpoints are committed (as the pipeline does after writing)."""
    batch = tailer.poll(max_bytes)
    state.commit(list(batch.checkpoints), None)
    return batch


def test_growth_and_a_partial_last_line_waiting_for_its_newline(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir, settle=60)
    text = dump(12)
    cut = len(dump(10)) + 20  # mid line 12 of the file (flow 11)
    (watch_dir / "d.txt").write_bytes(text[:cut])
    assert lines_of(poll(tailer, state)) == list(range(2, 12))
    with open(watch_dir / "d.txt", "ab") as fh:
        fh.write(text[cut:])
    assert lines_of(poll(tailer, state)) == [12, 13]
    assert poll(tailer, state).flows.height == 0


def test_an_unterminated_last_line_waits_for_its_newline_until_the_file_is_gone(tmp_path, watch_dir):
    # Settled is not finished: a writer may pause mid-line for longer than settle_seconds
    # (issue 18), and half a line read as a flow is a wrong flow. Only a dump that is gone
    # (finished through the descriptor still open on it) ends without its newline.
    tailer, state = make_tailer(tmp_path, watch_dir, settle=0.3)
    (watch_dir / "d.txt").write_bytes(dump(5).rstrip(b"\n"))
    assert lines_of(poll(tailer, state)) == [2, 3, 4, 5]
    time.sleep(0.4)
    assert lines_of(poll(tailer, state)) == []
    os.unlink(watch_dir / "d.txt")
    assert lines_of(poll(tailer, state)) == [6]


def test_rename_while_reading_keeps_the_offset(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    text = dump(20)
    (watch_dir / "nfcapd.current.1").write_bytes(text[: len(dump(10))])
    first = poll(tailer, state)
    os.rename(watch_dir / "nfcapd.current.1", watch_dir / "nfcapd.202701110138.txt")
    with open(watch_dir / "nfcapd.202701110138.txt", "ab") as fh:
        fh.write(text[len(dump(10)):])
    second = poll(tailer, state)
    assert lines_of(first) == list(range(2, 12)) and lines_of(second) == list(range(12, 22))
    assert set(second.flows["file"]) == {str(watch_dir / "nfcapd.202701110138.txt")}
    assert any("renamed" in m for m in second.messages)
    # the flow ids follow the content, not the name
    assert first.flow_ids[0] >> 32 == second.flow_ids[0] >> 32


@pytest.mark.parametrize("refill", [5, 40], ids=["shorter", "longer than before"])
def test_truncation_starts_again_from_the_first_line(tmp_path, watch_dir, refill):
    tailer, state = make_tailer(tmp_path, watch_dir)
    path = watch_dir / "d.txt"
    path.write_bytes(dump(20))
    before = poll(tailer, state)
    with open(path, "r+b") as fh:  # same inode, new text
        fh.truncate(0)
        fh.write(dump(refill, start=500))
    after = poll(tailer, state)
    assert lines_of(after) == list(range(2, refill + 2))
    assert any("truncated" in m for m in after.messages)
    assert set(after.flow_ids.to_list()).isdisjoint(before.flow_ids.to_list())


def test_a_deleted_file_is_finished_through_its_open_descriptor(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    path = watch_dir / "d.txt"
    path.write_bytes(dump(300))
    first = poll(tailer, state, max_bytes=4000)
    os.unlink(path)
    rest = []
    for _ in range(50):
        batch = poll(tailer, state, max_bytes=4000)
        rest += lines_of(batch)
        if not batch.more and not batch.flows.height:
            break
    assert lines_of(first) + rest == list(range(2, 302))


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_compressed_dumps_are_read_once_when_complete(tmp_path, watch_dir, suffix):
    import bz2
    import lzma

    import zstandard

    pack = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
            ".zst": zstandard.ZstdCompressor().compress}[suffix]
    tailer, state = make_tailer(tmp_path, watch_dir, settle=0.3)
    (watch_dir / f"d.txt{suffix}").write_bytes(pack(dump(50)))
    assert poll(tailer, state).flows.height == 0  # still changing: wait
    time.sleep(0.4)
    assert lines_of(poll(tailer, state)) == list(range(2, 52))
    assert poll(tailer, state).flows.height == 0
    tailer.stop()
    state.close()
    again, state = make_tailer(tmp_path, watch_dir, settle=0.3)  # a restart reads nothing
    assert poll(again, state).flows.height == 0


def test_the_gzipped_twin_of_a_dump_already_read_is_not_scored_again(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    path = watch_dir / "nfcapd.202701110138.txt"
    path.write_bytes(dump(100))
    assert poll(tailer, state).flows.height == 100
    (watch_dir / "nfcapd.202701110138.txt.gz").write_bytes(gzip.compress(path.read_bytes()))
    assert poll(tailer, state).flows.height == 0  # both present (gzip still running, or -k)
    path.unlink()
    batch = poll(tailer, state)
    assert batch.flows.height == 0
    assert any("same text" in m for m in batch.messages)


def test_a_partly_read_dump_gzipped_while_not_watched_continues_where_it_stopped(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    path = watch_dir / "nfcapd.202701110138.txt"
    path.write_bytes(dump(400))
    read = lines_of(poll(tailer, state, max_bytes=30000))
    tailer.stop()
    state.close()
    (watch_dir / "nfcapd.202701110138.txt.gz").write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    tailer, state = make_tailer(tmp_path, watch_dir)
    rest = lines_of(poll(tailer, state))
    assert read and read + rest == list(range(2, 402))
    assert set(poll(tailer, state).flows["file"]) == set()


def test_a_checkpoint_is_not_applied_to_other_text_in_the_same_inode(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    path = watch_dir / "d.txt"
    path.write_bytes(dump(50))
    poll(tailer, state)
    tailer.stop()
    state.close()
    with open(path, "r+b") as fh:  # rewritten, longer, while nobody watched
        fh.truncate(0)
        fh.write(dump(80, start=1000))
    tailer, state = make_tailer(tmp_path, watch_dir)
    batch = poll(tailer, state)
    assert lines_of(batch) == list(range(2, 82))
    assert any("differs from its checkpoint" in m for m in batch.messages)


def test_a_restart_resumes_from_the_checkpoint_not_the_read_ahead(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    (watch_dir / "d.txt").write_bytes(dump(100))
    committed = lines_of(poll(tailer, state, max_bytes=5000))
    tailer.poll(5000)  # read ahead, never committed (killed before the output was written)
    tailer.stop()
    state.close()
    tailer, state = make_tailer(tmp_path, watch_dir)
    assert committed + lines_of(poll(tailer, state)) == list(range(2, 102))


def test_from_start_and_since_override_checkpoints(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    old, new = watch_dir / "old.txt", watch_dir / "new.txt"
    old.write_bytes(dump(10))
    new.write_bytes(dump(20, start=100))
    os.utime(old, (1_000_000, 1_000_000))
    assert poll(tailer, state).flows.height == 30
    tailer.stop()
    state.close()
    tailer, state = make_tailer(tmp_path, watch_dir, from_start=True)
    assert poll(tailer, state).flows.height == 30
    tailer.stop()
    state.close()
    tailer, state = make_tailer(tmp_path, watch_dir, since=2_000_000)
    batch = poll(tailer, state)
    assert set(batch.flows["file"]) == {str(new)} and batch.flows.height == 20


def test_garbage_is_counted_and_the_tailer_keeps_going(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    (watch_dir / "a-garbage.txt").write_bytes(b"\x1b]0;PWNED\x07 not a flow\n" * 30 + os.urandom(500) + b"\n")
    (watch_dir / "b-bad.gz").write_bytes(b"\x1f\x8b" + b"this is not gzip at all" * 10)
    (watch_dir / "c-good.txt").write_bytes(dump(10))
    batch = poll(tailer, state)
    assert batch.flows.height == 10
    assert len(batch.skipped) >= 30
    assert any("cannot decompress" in m and "b-bad.gz" in m for m in batch.messages)
    assert tailer.errors >= 1
    assert all("\x1b" not in m and "\x07" not in m for m in batch.messages)
    assert poll(tailer, state).flows.height == 0  # the broken file is not retried forever


def test_a_vanished_directory_is_reported_and_picked_up_again(tmp_path, watch_dir):
    tailer, state = make_tailer(tmp_path, watch_dir)
    (watch_dir / "a.txt").write_bytes(dump(10))
    assert poll(tailer, state).flows.height == 10
    os.rename(watch_dir, tmp_path / "away")
    batch = poll(tailer, state)
    assert any("vanished" in m for m in batch.messages) and tailer.errors == 1
    os.rename(tmp_path / "away", watch_dir)
    (watch_dir / "b.txt").write_bytes(dump(5, start=50))
    batch = poll(tailer, state)
    assert any("is back" in m for m in batch.messages)
    assert set(batch.flows["file"]) == {str(watch_dir / "b.txt")}  # a.txt is not read twice


def test_a_file_that_cannot_be_opened_is_reported_once_and_the_rest_is_read(tmp_path, watch_dir):
    # root reads everything, so use a symlink loop: stat fails with ELOOP for anyone
    os.symlink("loop.txt", watch_dir / "loop.txt")
    (watch_dir / "good.txt").write_bytes(dump(10))
    tailer, state = make_tailer(tmp_path, watch_dir)
    batch = poll(tailer, state)
    assert batch.flows.height == 10
    assert any("loop.txt" in m and "cannot" in m for m in batch.messages)
    assert not poll(tailer, state).messages and tailer.errors == 1


def test_an_unknown_observer_is_a_config_error(tmp_path, watch_dir):
    from engine.config.settings import ConfigError

    state = StateStore(tmp_path / "state.sqlite", "x")
    with pytest.raises(ConfigError, match="observer"):
        Tailer(watch_dir, WatchConfig(observer="inotify"), state)


def test_an_inode_freed_and_reused_between_two_scans_is_a_new_dump(tmp_path, watch_dir):
    """nfexpire deletes a dump that was read to its end and the next rotation, of the very same
    size, gets its inode before the next scan: it must not pass for the old file renamed."""
    tailer, state = make_tailer(tmp_path, watch_dir)
    old = watch_dir / "nfcapd.202701110138.txt"
    old.write_bytes(dump(50))
    assert poll(tailer, state).flows.height == 50
    ino = old.stat().st_ino
    old.unlink()
    new = watch_dir / "nfcapd.202701110139.txt"
    text = dump(50, start=1)
    for attempt in range(50):  # ask the filesystem for the freed inode (usually the first try)
        new.write_bytes(text)
        if new.stat().st_ino == ino:
            break
        new.rename(watch_dir / f"other-{attempt}")
    else:
        pytest.skip("the filesystem did not reuse the inode")
    batch = poll(tailer, state)
    assert set(batch.flows["file"]) >= {str(new)}
    assert batch.flows.filter(batch.flows["file"] == str(new)).height == 50
    assert not any("renamed" in m for m in batch.messages)


def _take_inode(path, data: bytes, ino: int, spare) -> bool:
    """Write `data` at `path` in the freed inode `ino` (the filesystem usually hands it out at
    once); the misses are moved to `spare`, outside the watched directory."""
    for attempt in range(50):
        path.write_bytes(data)
        if path.stat().st_ino == ino:
            return True
        path.rename(spare / f"miss-{attempt}")
    return False


@pytest.mark.parametrize("restart", [False, True], ids=["same run", "after a restart"])
def test_a_dump_never_read_does_not_lend_its_inode_to_the_gzip_of_another(tmp_path, watch_dir,
                                                                          restart):
    """B is read; A is seen but not yet read (its checkpoint says nothing of its text); A is
    gzipped away and B's gzip lands in A's freed inode, then B is removed. B.gz is B's twin and
    must not be scored again under A's checkpoint (found by the live exactly-once test)."""
    spare = tmp_path / "spare"
    spare.mkdir()
    tailer, state = make_tailer(tmp_path, watch_dir)
    b = watch_dir / "nfcapd.202701110138.txt"
    b.write_bytes(dump(100))
    assert poll(tailer, state).flows.height == 100
    a = watch_dir / "nfcapd.202701110139.txt"
    a.write_bytes(dump(60, start=500))
    assert poll(tailer, state, max_bytes=0).flows.height == 0  # seen, not read
    if restart:
        tailer.stop()
        state.close()
    ino = a.stat().st_ino
    (spare / "a.gz").write_bytes(gzip.compress(a.read_bytes()))  # gzip A elsewhere, remove A
    a.unlink()
    if not _take_inode(watch_dir / f"{b.name}.gz", gzip.compress(b.read_bytes()), ino, spare):
        pytest.skip("the filesystem did not reuse the inode")
    b.unlink()
    if restart:
        tailer, state = make_tailer(tmp_path, watch_dir)
    batch = poll(tailer, state)
    assert batch.flows.height == 0, batch.messages
    assert any("same text" in m for m in batch.messages)
    assert poll(tailer, state).flows.height == 0


def test_since_fingerprints_what_it_skips_so_a_restart_and_a_gzip_skip_it_too(tmp_path, watch_dir):
    old = watch_dir / "nfcapd.202701110138.txt"
    old.write_bytes(dump(40))
    os.utime(old, (1_000_000, 1_000_000))
    tailer, state = make_tailer(tmp_path, watch_dir, since=2_000_000)
    assert poll(tailer, state).flows.height == 0
    tailer.stop()
    state.close()
    tailer, state = make_tailer(tmp_path, watch_dir)  # no --since now
    assert poll(tailer, state).flows.height == 0
    (watch_dir / f"{old.name}.gz").write_bytes(gzip.compress(old.read_bytes()))
    old.unlink()
    assert poll(tailer, state).flows.height == 0
