"""Tail a directory of rotating nfdump text dumps: every complete flow line exactly once.

Filesystem events (watchdog's native observer, or its polling observer for NFS and other mounts
where inotify is silent) only wake the tailer; what happened is read from `os.stat`/`os.fstat`
on each scan, because events are lost and coalesced. A periodic rescan runs as well.

Files are tracked by (st_dev, st_ino), not by name, so a dump renamed while it is being read
keeps its offset (nfcapd-style `tmp -> final` rotation), and a checkpoint whose inode now holds
other text (a file truncated, or an inode reused after nfexpire deleted the old dump) is caught
by the content fingerprint and read from the start. Plain files are read as they grow; a
partial last line waits for its newline or for the file to stop changing for `settle_seconds`.
A deleted file is finished through its open descriptor. Compressed files (.gz .bz2 .xz .zst)
are read once they stop changing; the compressed twin of a dump already read (gzip after
scoring) is recognised by its fingerprint and continues that dump's checkpoint instead of
being scored again.

The tailer reads ahead of what is committed: `poll()` hands out a Batch with the checkpoints
it would reach, and the pipeline commits them together with the output (engine.live.state).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from engine.config.settings import ConfigError, WatchConfig
from engine.core.dumpfiles import (
    COMPRESSION_SUFFIXES,
    DEFAULT_MAX_RATIO,
    MAGICS,
    DecodeError,
    TextStream,
    Truncated,
    codec_of,
    is_dump,
)
from engine.core.sanitize import inert
from engine.core.schema import FLOW_SCHEMA
from engine.ingest import BENIGN_REASONS, Cursor, ReadResult, SkippedLine
from engine.ingest import parse_bytes as _parse_whole
from engine.ingest.reader import MAX_LINE_BYTES, parse_step
from engine.live.state import HEAD_BYTES, Checkpoint, FileRecord, StateStore, fingerprint

# A twin whose fingerprint covers less than this much text must also share the name stem:
# the header line plus a flow or two is not enough to call two dumps the same.
TWIN_MIN_HEAD = 4096
_READ_PIECE = 1 << 20
_BROKEN = (OSError, EOFError, DecodeError)


@dataclass(frozen=True)
class Batch:
    """Flows read by one poll, with the checkpoints that cover exactly them."""

    flows: pl.DataFrame  # FLOW_SCHEMA
    flow_ids: pl.Series  # UInt64, one per flow: (file uid << 32) | line, stable across restarts
    checkpoints: tuple[Checkpoint, ...] = ()
    skipped: tuple[SkippedLine, ...] = ()
    messages: tuple[str, ...] = ()
    nbytes: int = 0
    more: bool = False  # the byte budget ran out with data still waiting

    @property
    def empty(self) -> bool:
        return self.flows.height == 0 and not self.checkpoints and not self.messages


def parse_bytes(data: bytes, *, file: str, cursor: Cursor | None = None, final: bool = False,
                timezone: str = "local") -> ReadResult:
    """Parse `data`, the text that *follows* `cursor` (engine.ingest.parse_bytes takes the whole
    text and indexes it with cursor.offset; the tailer only holds what it just read)."""
    cursor = cursor or Cursor()
    result = _parse_whole(data, file=file, cursor=dataclasses.replace(cursor, offset=0),
                          final=final, timezone=timezone)
    return dataclasses.replace(
        result, cursor=dataclasses.replace(result.cursor, offset=cursor.offset + result.cursor.offset))


def strip_compression(name: str) -> str:
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_full(stream: TextStream, n: int) -> bytes:
    return stream.read(n)  # up to n bytes of text, fewer only at its end




@dataclass
class _File:
    """One tracked inode (mutable; owned by the tailer thread)."""

    dev: int
    ino: int
    path: str
    uid: int | None = None
    cursor: Cursor = field(default_factory=Cursor)
    head_len: int = 0
    head_sha: str = ""
    done: bool = False
    gone: bool = False
    size: int = -1
    mtime: float = 0.0
    changed_at: float = 0.0
    fd: int | None = None
    stream: TextStream | None = None
    pending: bytes = b""
    blocked_by: int | None = None  # compressed twin of a file still being read (uid)
    codec: str | None = None  # from the content (magic bytes), never the name
    sniffed: bool = False  # codec decided (an empty or 1-byte file waits to tell)
    cut_at: tuple[int, float] | None = None  # (size, mtime) when its compressed text ended early

    @property
    def key(self) -> tuple[int, int]:
        return (self.dev, self.ino)

    @property
    def compressed(self) -> bool:
        return self.codec is not None

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.close()
            except Exception:  # noqa: BLE001 - a broken stream is being discarded anyway
                pass
            self.stream = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.pending = b""

    def record(self) -> FileRecord:
        return FileRecord(self.uid or 0, self.dev, self.ino, self.path, self.head_len, self.head_sha,
                          self.cursor.to_json(), self.done, self.gone)


class _Wake:
    """watchdog handler: any event just wakes the tailer (the scan finds out what changed)."""

    def __init__(self, event: threading.Event):
        self._event = event

    def dispatch(self, event) -> None:  # watchdog calls dispatch(event) on its thread
        self._event.set()


class Tailer:
    def __init__(
        self,
        directory: str | Path,
        watch: WatchConfig,
        state: StateStore,
        *,
        timezone: str = "local",
        from_start: bool = False,
        since: float | None = None,
        max_ratio: float | None = DEFAULT_MAX_RATIO,
    ):
        if watch.observer not in ("native", "polling"):
            raise ConfigError(f"[watch] observer = {watch.observer!r}: expected \"native\" or \"polling\"")
        self.directory = Path(directory)
        self.watch = watch
        self.state = state
        self.timezone = timezone
        self.since = since
        self.max_ratio = max_ratio  # decompression budget (engine.core.dumpfiles.Bomb)
        # a line longer than this is a counted skip, passed over in budget-sized pieces; below
        # half the batch budget, so a fresh budget always shows whether a line is too long
        self.max_line = min(MAX_LINE_BYTES, max(watch.batch_max_bytes // 2, 1))
        self._files: dict[tuple[int, int], _File] = {}
        self._wake = threading.Event()
        self._observer = None
        self._dir_problem: str | None = None
        self._file_problems: dict[str, str] = {}
        self._messages: list[str] = []
        self.errors = 0
        self.files_seen = 0
        self.newest_file: str | None = None
        self.backlog_since: float | None = None  # mtime of the oldest file with unread text
        if from_start or since is not None:
            state.forget()
        # Records of files not tracked right now, by uid: resumed when their inode shows up
        # again with the same text, adopted by their compressed twin, or kept for that.
        self._records: dict[int, FileRecord] = self._index(state.records())
        self._placed = {(r.dev, r.ino): uid for uid, r in self._records.items() if r.dev >= 0}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._schedule()
        self._wake.set()  # first scan at once

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        for f in self._files.values():
            f.close()

    def wait(self, timeout: float) -> None:
        """Sleep until a filesystem event or `timeout` (the periodic rescan)."""
        self._wake.wait(timeout)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def _schedule(self) -> None:
        # Late (start-up time): only a running watcher needs an observer; `watch --help`,
        # `demo --help` and the tests that drive a Tailer by hand skip watchdog's import.
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        if self._observer is not None:
            self._observer.stop()
            self._observer = None
        if not self.directory.is_dir():
            return  # the scan reports it, and schedules again when it reappears
        if self.watch.observer == "polling":
            observer = PollingObserver(timeout=self.watch.poll_interval)
        else:
            observer = Observer()
        try:
            observer.schedule(_Wake(self._wake), str(self.directory), recursive=self.watch.recursive)
            observer.daemon = True
            observer.start()
        except OSError as exc:  # e.g. inotify watch limit: the periodic rescan still works
            self._note(f"cannot watch {self.directory} for events ({exc}); rescanning every "
                       f"{self.watch.poll_interval:g} s instead", error=True)
            return
        self._observer = observer

    # -- messages ----------------------------------------------------------------------------

    def _note(self, text: str, *, error: bool = False) -> None:
        self._messages.append(inert(text))  # names and dump text: shown, never sent
        if error:
            self.errors += 1

    def _problem(self, path: str, text: str) -> None:
        """A per-file error, reported once until it changes or goes away."""
        if self._file_problems.get(path) != text:
            self._file_problems[path] = text
            self._note(text, error=True)

    # -- scanning ----------------------------------------------------------------------------

    @staticmethod
    def _index(records: list[FileRecord]) -> dict[int, FileRecord]:
        newest: dict[tuple[int, int], int] = {}
        for rec in records:  # ordered by uid
            newest[(rec.dev, rec.ino)] = rec.uid
        # An inode reused by a later dump only ever holds the newest record's text; older
        # records of that inode stay as twin candidates but can no longer be found by inode.
        return {
            rec.uid: rec if newest[(rec.dev, rec.ino)] == rec.uid else _unplaced(rec)
            for rec in records
        }

    def _by_inode(self, key: tuple[int, int]) -> FileRecord | None:
        uid = self._placed.pop(key, None)
        return self._records.get(uid) if uid is not None else None

    def _unplace(self, key: tuple[int, int]) -> None:
        uid = self._placed.pop(key, None)
        if uid in self._records:
            self._records[uid] = _unplaced(self._records[uid])

    def _listing(self) -> dict[tuple[int, int], tuple[str, os.stat_result]] | None:
        """Every matching regular file, by identity; None when the directory cannot be listed."""
        try:
            if self.watch.recursive:
                names = []
                for root, _dirs, files in os.walk(self.directory, onerror=_raise):
                    names.extend(os.path.join(root, n) for n in files)
            else:
                names = [e.path for e in os.scandir(self.directory)]
        except FileNotFoundError:
            self._dir_trouble(f"directory {self.directory} vanished; waiting for it to reappear")
            return None
        except OSError as exc:
            self._dir_trouble(f"cannot list {self.directory}: {exc.strerror or exc}")
            return None
        if self._dir_problem is not None:
            self._note(f"directory {self.directory} is back")
            self._dir_problem = None
            self._schedule()
        found = {}
        for path in names:
            if not is_dump(os.path.basename(path), self.watch.glob):
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # deleted between listing and stat
            except OSError as exc:
                self._problem(path, f"cannot stat {path}: {exc.strerror or exc}")
                continue
            if os.path.isdir(path) or not _is_regular(st):
                continue
            found[(st.st_dev, st.st_ino)] = (path, st)
        return found

    def _dir_trouble(self, text: str) -> None:
        if self._dir_problem != text:
            self._dir_problem = text
            self._note(text, error=True)

    def _reconcile(self, found: dict, now: float) -> None:
        for key, (path, st) in found.items():
            f = self._files.get(key)
            if f is not None and self._reused(f, path, st):
                self._drop(f)  # finished and closed: its inode was freed and reused
                f = None
            if f is None:
                self._discover(key, path, st, now)
                continue
            if f.path != path and not f.head_len:
                # Nothing read under the old name: nothing says it is the same text (the inode
                # may be a new dump's, or the compressed twin of a dump already read).
                self._drop(f)
                self.files_seen -= 1
                self._discover(key, path, st, now)
                continue
            if f.path != path:
                self._note(f"{f.path} renamed to {path}; reading on from line {f.cursor.line + 1}")
                f.path = path
                if f.uid is not None:
                    self.state.move(f.uid, f.dev, f.ino, path)
            self._observe(f, st, now)
        for key in [k for k in self._files if k not in found]:
            f = self._files[key]
            if not f.gone:
                f.gone = True
                if f.fd is None or f.done:
                    self._drop(f)

    def _reused(self, f: _File, path: str, st: os.stat_result) -> bool:
        """Does this known inode hold another dump now? nfexpire deleted ours and the next
        rotation got its inode between two scans (with the same size, the size would not tell).
        Only possible when we hold no descriptor, and only worth a look when it changed."""
        if f.fd is not None or not f.head_len or (st.st_size, st.st_mtime) == (f.size, f.mtime):
            return False
        head = _read_head(path, f.head_len)
        return head is not None and fingerprint(head) != (f.head_len, f.head_sha)

    def _observe(self, f: _File, st: os.stat_result, now: float) -> None:
        if (st.st_size, st.st_mtime) != (f.size, f.mtime):
            f.size, f.mtime, f.changed_at = st.st_size, st.st_mtime, now

    def _settled(self, f: _File, now: float) -> bool:
        return now - max(f.changed_at, f.mtime) >= self.watch.settle_seconds

    def _drop(self, f: _File) -> None:
        """Stop tracking `f`; its read-ahead checkpoint stays at hand should it come back."""
        f.close()
        if f.uid is not None:
            f.gone = True
            self._unplace(f.key)
            self._records[f.uid] = f.record()
            self._placed[f.key] = f.uid
            try:
                self.state.mark_gone(f.uid)
            except sqlite3.Error:
                pass  # bookkeeping only (its checkpoint is committed): not worth losing a poll
        self._files.pop(f.key, None)

    def _discover(self, key, path: str, st: os.stat_result, now: float) -> None:
        f = _File(dev=key[0], ino=key[1], path=path)
        self._observe(f, st, now)
        f.changed_at = min(f.changed_at, st.st_mtime)  # an old file is settled already
        self._files[key] = f
        self.files_seen += 1
        rec = self._by_inode(key)
        if rec is not None:
            head = self._head(f, rec.head_len) if rec.head_len else b""
            if head is None:  # unreadable for now: decide when it can be read
                self._placed[key] = rec.uid
                del self._files[key]
                self.files_seen -= 1
                return
            if rec.head_len == 0:
                # Nothing of that file was ever read, so nothing says this is still its text:
                # the inode may have been freed and handed to another dump (even the compressed
                # twin of one already read, which must go through _claim).
                self.state.mark_gone(rec.uid)
                del self._records[rec.uid]
            elif fingerprint(head) == (rec.head_len, rec.head_sha):
                del self._records[rec.uid]
                f.uid, f.done = rec.uid, rec.done
                f.cursor = Cursor.from_json(rec.cursor) if rec.cursor else Cursor()
                f.head_len, f.head_sha = rec.head_len, rec.head_sha
                if rec.name != path or rec.gone:
                    self.state.move(rec.uid, f.dev, f.ino, path)
                return
            else:
                self._note(f"{path}: content differs from its checkpoint (replaced or truncated "
                           "while not watched); reading it from the start")
                self.state.mark_gone(rec.uid)
                self._records[rec.uid] = _unplaced(rec)  # its text may yet turn up compressed
        if self.since is not None and st.st_mtime < self.since:
            # --since: older dumps count as read, now and after a restart without --since (the
            # fingerprint is what lets a restart, or a compressed twin, recognise them)
            head = self._head(f) or b""
            f.head_len, f.head_sha = fingerprint(head) if head else (0, "")
            f.uid, f.done = self.state.add(f.dev, f.ino, path, f.head_len, f.head_sha), True
            self.state.commit([Checkpoint(f.uid, f.cursor.to_json(), f.head_len, f.head_sha, True)],
                              None)
        elif self._sniff(f, settled=False) and not f.compressed:
            # compressed files get their record once complete (twin check)
            f.uid = self.state.add(f.dev, f.ino, path)

    def _sniff(self, f: _File, *, settled: bool) -> bool:
        """Decide `f.codec` from its first bytes; False while too few are written to tell."""
        if f.sniffed:
            return True
        try:
            with open(f.path if f.fd is None else f"/proc/self/fd/{f.fd}", "rb") as fh:
                head = fh.read(6)
        except OSError:
            return False
        codec = codec_of(head)
        if codec is None and len(head) < 6 and not settled:
            if not head or any(m.startswith(head) for m in MAGICS):
                return False  # e.g. an empty X.gz.tmp just created: its first bytes will tell
        f.codec, f.sniffed = codec, True
        return True

    def _head(self, f: _File, n: int = HEAD_BYTES) -> bytes | None:
        """The first `n` bytes of decompressed text (fewer if the file is shorter)."""
        try:
            return _read_head(f.path, n, f.fd, raise_errors=True)
        except _BROKEN as exc:
            self._problem(f.path, f"cannot read {f.path}: {getattr(exc, 'strerror', None) or exc}")
            return None

    # -- reading -----------------------------------------------------------------------------

    def poll(self, max_bytes: int) -> Batch:
        now = time.time()
        found = self._listing()
        if found is not None:
            self._reconcile(found, now)
        frames: list[pl.DataFrame] = []
        checkpoints: list[Checkpoint] = []
        skipped: list[SkippedLine] = []
        budget = max_bytes
        more = False
        backlog: float | None = None
        for f in sorted(self._files.values(), key=lambda f: (f.mtime, f.path)):
            if f.done:
                continue
            if budget <= 0:
                more = True
            else:
                budget -= self._read(f, budget, now, frames, checkpoints, skipped)
            # unread text makes lag; a compressed dump cut short and unchanged since has none
            # that can be read (it is reported, and read on if it grows)
            waiting = f.compressed and f.cut_at != (f.size, f.mtime)
            if not f.done and (waiting or not f.compressed and f.size > f.cursor.offset):
                backlog = f.mtime if backlog is None else min(backlog, f.mtime)
        self.backlog_since = backlog
        if frames:
            data = pl.concat(frames, how="vertical")
            flows, ids = data.drop("flow_id"), data["flow_id"]
        else:
            flows, ids = pl.DataFrame(schema=FLOW_SCHEMA), pl.Series("flow_id", [], pl.UInt64)
        messages, self._messages = tuple(self._messages), []
        return Batch(flows, ids, tuple(checkpoints), tuple(skipped), messages,
                     max_bytes - budget, more or budget <= 0)

    def _read(self, f: _File, budget: int, now: float, frames, checkpoints, skipped) -> int:
        """Read at most `budget` bytes of `f`; return how many were taken."""
        if not f.sniffed:
            if f.gone or not self._sniff(f, settled=self._settled(f, now)):
                return 0
            if not f.compressed and f.uid is None:
                f.uid = self.state.add(f.dev, f.ino, f.path)
        if f.compressed:
            return self._read_compressed(f, budget, now, frames, checkpoints, skipped)
        if f.uid is None:  # its record could not be written when it was found (disk full)
            f.uid = self.state.add(f.dev, f.ino, f.path)
        if f.fd is None:
            if f.gone or f.size == f.cursor.offset:
                return 0  # nothing new (the scan's stat says so): no need to open it
            try:
                fd = os.open(f.path, os.O_RDONLY)
            except FileNotFoundError:
                return 0
            except OSError as exc:
                self._problem(f.path, f"cannot read {f.path}: {exc.strerror or exc}")
                return 0
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != f.key:  # replaced between scan and open: next scan
                os.close(fd)
                return 0
            f.fd = fd
            self._file_problems.pop(f.path, None)
        st = os.fstat(f.fd)
        self._observe(f, st, now)
        if st.st_size < f.cursor.offset or (st.st_size > f.cursor.offset and not self._same_head(f)):
            self._note(f"{f.path} truncated or rewritten (now {st.st_size} bytes, was read to "
                       f"{f.cursor.offset}); reading it again from the start")
            if f.uid is not None:
                self.state.mark_gone(f.uid)
            f.uid = self.state.add(f.dev, f.ino, f.path)
            f.cursor, f.head_len, f.head_sha = Cursor(), 0, ""
        settled = self._settled(f, now)
        waiting = st.st_size - f.cursor.offset
        taken = 0
        if waiting > 0:
            n = min(waiting, budget)
            try:
                data = os.pread(f.fd, n, f.cursor.offset)
            except OSError as exc:
                self._problem(f.path, f"cannot read {f.path}: {exc.strerror or exc}")
                return 0
            # a partial last line waits for its newline however long the writer pauses; only a
            # file that is gone (finished through its descriptor) ends without one
            final = f.gone and len(data) == waiting
            taken = len(data)
            self._parse(f, data, final, frames, skipped)
            if f.head_len < HEAD_BYTES:
                head = os.pread(f.fd, HEAD_BYTES, 0)
                f.head_len, f.head_sha = fingerprint(head)
        at_end = f.cursor.offset >= f.size
        if f.gone and at_end:
            f.done = True
        if f.uid is not None and (taken or f.done):
            checkpoints.append(Checkpoint(f.uid, f.cursor.to_json(), f.head_len, f.head_sha, f.done))
        if f.done:
            self._drop(f)
        elif at_end and settled:
            f.close()  # reopened by name when it grows; keeps descriptors bounded
        return taken

    def _same_head(self, f: _File) -> bool:
        """Does the text already read still start the file? (Truncated and refilled past the
        old offset between two looks, the size alone would not tell.)"""
        if not f.head_len:
            return True
        return fingerprint(os.pread(f.fd, f.head_len, 0)) == (f.head_len, f.head_sha)

    def _read_compressed(self, f: _File, budget: int, now: float, frames, checkpoints, skipped) -> int:
        if f.stream is None:
            if f.gone or not self._settled(f, now):
                return 0
            if f.cut_at == (f.size, f.mtime):
                return 0  # its text ended early and it has not changed since: wait for it
            if f.uid is None:
                claimed = self._claim(f)
                if claimed is None:
                    return 0
                if isinstance(claimed, Exception):
                    return self._broken(f, claimed, checkpoints)
            if f.done:  # the twin was read to its end already
                checkpoints.append(Checkpoint(f.uid, f.cursor.to_json(), f.head_len, f.head_sha, True))
                return 0
            try:
                f.fd = os.open(f.path, os.O_RDONLY)
                f.stream = TextStream(os.fdopen(f.fd, "rb", closefd=False), max_ratio=self.max_ratio)
                _skip(f.stream, f.cursor.offset)
            except Truncated as exc:
                return self._cut_short(f, exc, checkpoints)
            except _BROKEN as exc:
                return self._broken(f, exc, checkpoints)
            self._file_problems.pop(f.path, None)
        fresh, error, eof = b"", None, False
        try:
            fresh = f.stream.read(budget)
            eof = len(fresh) < budget
            if eof:
                f.stream.read(1)  # raises what cut the text short, if anything did
        except _BROKEN as exc:
            error, eof = exc, True
        data = f.pending + fresh
        before = f.cursor.offset
        self._parse(f, data, eof and error is None, frames, skipped)
        f.pending = data[f.cursor.offset - before:]
        if isinstance(error, Truncated):
            return len(fresh) + self._cut_short(f, error, checkpoints)
        if error is not None:
            return len(fresh) + self._broken(f, error, checkpoints)
        f.done = eof and not f.pending  # the line cap may leave whole lines for the next poll
        assert f.uid is not None  # claimed before its stream was opened
        checkpoints.append(Checkpoint(f.uid, f.cursor.to_json(), f.head_len, f.head_sha, f.done))
        if f.done:
            f.close()
        return len(fresh)

    def _cut_short(self, f: _File, exc: Exception, checkpoints) -> int:
        """Compressed text that ends before its end marker: still being written (gzip -c >
        X.gz.tmp with a pause), or truncated for good. The flows before are kept; the file is
        read on from there once it changes."""
        self._problem(f.path, f"{f.path}: {exc}; kept the flows before line {f.cursor.line + 1}, "
                      "reading on if it grows")
        f.cut_at = (f.size, f.mtime)
        f.close()
        if f.uid is not None:
            checkpoints.append(Checkpoint(f.uid, f.cursor.to_json(), f.head_len, f.head_sha, False))
        return 0

    def _broken(self, f: _File, exc: Exception, checkpoints) -> int:
        self._problem(f.path, f"cannot decompress {f.path}: {getattr(exc, 'strerror', None) or exc}; "
                      f"kept the flows before line {f.cursor.line + 1}")
        f.done = True
        f.close()
        if f.uid is not None:
            checkpoints.append(Checkpoint(f.uid, f.cursor.to_json(), f.head_len, f.head_sha, True))
        return 0

    def _claim(self, f: _File) -> bool | Exception | None:
        """Give a complete compressed file its record: a new one, or its twin's (gzip after read).

        False while its twin is still being read under its old name (gzip -k, or the plain file
        still draining after its deletion): reading both would score the same flows twice.
        An exception when it cannot be decompressed (it gets a record, to be marked broken).
        """
        if f.blocked_by is not None and any(g.uid == f.blocked_by for g in self._files.values()):
            return None
        try:
            fh = open(f.path, "rb")
        except OSError as exc:
            self._problem(f.path, f"cannot read {f.path}: {exc.strerror or exc}")
            return None
        try:
            with fh:
                head = TextStream(fh, max_ratio=self.max_ratio).read(HEAD_BYTES)
        except Truncated as exc:  # not one byte decodes yet: wait for more
            self._problem(f.path, f"{f.path}: {exc}; waiting for it to grow")
            f.cut_at = (f.size, f.mtime)
            return None
        except _BROKEN as exc:
            f.uid = self.state.add(f.dev, f.ino, f.path)
            return exc
        f.head_len, f.head_sha = fingerprint(head)
        twin = self._twin(f, head)
        if isinstance(twin, _File):
            f.blocked_by = twin.uid
            return None
        if twin is not None:
            del self._records[twin.uid]
            if self._placed.get((twin.dev, twin.ino)) == twin.uid:
                del self._placed[(twin.dev, twin.ino)]
            self.state.move(twin.uid, f.dev, f.ino, f.path)
            f.uid, f.done = twin.uid, twin.done
            f.cursor = Cursor.from_json(twin.cursor) if twin.cursor else Cursor()
            self._note(f"{f.path} holds the same text as {twin.name}: continuing at line "
                       f"{f.cursor.line + 1}, not scoring it again")
            return True
        f.uid = self.state.add(f.dev, f.ino, f.path, f.head_len, f.head_sha)
        return True

    def _twin(self, f: _File, head: bytes) -> FileRecord | _File | None:
        """The newest file or record whose fingerprint matches the start of `head`."""
        stem = os.path.basename(strip_compression(f.path))
        # a compressed file whose text ends early cannot be continued: not a twin to wait for
        # (identical truncated copies blocked each other, and counted as lag, for ever)
        candidates: list[FileRecord | _File] = [
            g for g in self._files.values()
            if g is not f and g.uid is not None and g.cut_at is None
        ]
        candidates += self._records.values()
        hashes: dict[int, str] = {}  # one sha256 per distinct length, not per candidate
        best = None
        for c in candidates:
            if c.head_len == 0 or c.head_len > len(head):
                continue
            if c.head_len < TWIN_MIN_HEAD:
                name = c.path if isinstance(c, _File) else c.name
                if os.path.basename(strip_compression(name)) != stem:
                    continue
            if c.head_len not in hashes:
                hashes[c.head_len] = fingerprint(head[: c.head_len])[1]
            if hashes[c.head_len] == c.head_sha and (best is None or c.uid > best.uid):
                best = c
        return best

    def _parse(self, f: _File, data: bytes, final: bool, frames, skipped) -> None:
        result = parse_step(data, file=f.path, cursor=f.cursor, final=final,
                            timezone=self.timezone, max_line=self.max_line)
        f.cursor = result.cursor
        bad = [s for s in result.skipped if s.reason not in BENIGN_REASONS]  # not header/blank
        if bad:
            skipped.extend(bad)
            first = bad[0]
            self._note(f"{f.path}: {len(bad)} line(s) skipped; first at line "
                       f"{first.line}: {first.reason}")
        if result.flows.height:
            frames.append(result.flows.with_columns(
                flow_id=pl.lit(f.uid << 32, pl.UInt64) + pl.col("line").cast(pl.UInt64)))
            self.newest_file = f.path


def _read_head(path: str, n: int, fd: int | None = None, raise_errors: bool = False) -> bytes | None:
    """The first `n` bytes of the text at `path` (or of the open `fd`), decompressed when the
    content is compressed."""
    try:
        with open(path if fd is None else f"/proc/self/fd/{fd}", "rb") as fh:
            return TextStream(fh, max_ratio=None).read(n)
    except _BROKEN:
        if raise_errors:
            raise
        return None


def _unplaced(rec: FileRecord) -> FileRecord:
    """`rec` no longer at its inode (the inode holds other text now)."""
    return dataclasses.replace(rec, dev=-1, ino=-1)


def _skip(stream, n: int) -> None:
    while n > 0:
        piece = stream.read(min(n, _READ_PIECE))
        if not piece:
            raise EOFError("compressed text is shorter than its checkpoint")
        n -= len(piece)


def _raise(exc: OSError) -> None:
    raise exc


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)
