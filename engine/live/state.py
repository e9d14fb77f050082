"""Checkpoints of the live watcher in SQLite, committed together with the output they describe.

One row per dump file and *sink* (the consumer the flows went to: a headless output file, or
the TUI), holding the file's identity (device, inode, last name), a content fingerprint (sha256
of its first `head_len` bytes of decompressed text), the ingest Cursor after the last flow
handed to that sink, and whether the file is finished. Rows are keyed by an integer `uid` that
never changes while the content stays the same: it follows renames, and it follows a file's
content into its compressed twin. A truncated or replaced file gets a new uid.

Exactly once, for a headless JSONL sink: the batch is appended to the output file and fsync'ed,
*then* one SQLite transaction stores the new cursors together with the output file's new byte
length. On start the output file is cut back to the last committed length. A kill before the
commit leaves bytes past that length, which are cut and re-read; a kill after it leaves
nothing to redo. (Writing the batch into SQLite and exporting it would also be exactly once,
but would store every flow twice and make `tail -f OUT.jsonl` consumers wait for an export.)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    uid      INTEGER PRIMARY KEY AUTOINCREMENT,
    sink     TEXT NOT NULL,
    dev      INTEGER NOT NULL,
    ino      INTEGER NOT NULL,
    name     TEXT NOT NULL,
    head_len INTEGER NOT NULL DEFAULT 0,
    head_sha TEXT NOT NULL DEFAULT '',
    cursor   TEXT,               -- engine.ingest.Cursor.to_json() after the last committed flow
    done     INTEGER NOT NULL DEFAULT 0,
    gone     INTEGER NOT NULL DEFAULT 0,  -- no longer in the directory (kept for twin matching)
    updated  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_identity ON files (sink, dev, ino);
CREATE TABLE IF NOT EXISTS sinks (
    sink       TEXT PRIMARY KEY,
    out_length INTEGER NOT NULL DEFAULT 0
);
-- the incident events file beside a headless output, and the open incidents it has written
-- (engine.detect.incidents.IncidentTracker.to_state), committed with the same checkpoints
CREATE TABLE IF NOT EXISTS incident_sinks (
    sink       TEXT PRIMARY KEY,
    out_length INTEGER NOT NULL DEFAULT 0,
    tracker    TEXT
);
"""

HEAD_BYTES = 64 * 1024  # how much decompressed text the fingerprint covers
GONE_RETENTION_SECONDS = 30 * 86400  # forget vanished files after this long


class StateError(RuntimeError):
    """The state database cannot be used (message names it and what to do)."""


class StateLocked(StateError):
    """Another watcher holds this state database for the same sink."""


@dataclass(frozen=True)
class FileRecord:
    uid: int
    dev: int
    ino: int
    name: str
    head_len: int
    head_sha: str
    cursor: str | None  # JSON, decoded by the caller (the Cursor type belongs to ingest)
    done: bool
    gone: bool


@dataclass(frozen=True)
class Checkpoint:
    """What one batch did to one file: written in the same transaction as the output length."""

    uid: int
    cursor: str
    head_len: int
    head_sha: str
    done: bool


def fingerprint(head: bytes) -> tuple[int, str]:
    head = head[:HEAD_BYTES]
    return len(head), hashlib.sha256(head).hexdigest()


class StateStore:
    """The checkpoints of one sink. Thread-safe: the tailer and the scoring thread share it."""

    def __init__(self, path: str | Path, sink: str):
        self.path = Path(path)
        self.sink = sink
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = self._take_lock()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot use the watcher's state database here "
                             f"({exc.strerror or exc})") from None
        self._mutex = threading.Lock()
        try:
            self._open()
        except (sqlite3.Error, OSError) as exc:
            os.close(self._lock_fd)
            raise StateError(
                f"{self.path}: the watcher's state database cannot be used ({exc}). If it is "
                "read-only, make it writable; if it is damaged, move it aside: the watcher then "
                "starts afresh and reads every dump again (--since TIME skips older ones)"
            ) from None

    def _open(self) -> None:
        sink = self.sink
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is enough: the output is fsync'ed before the commit, so a commit lost to a
        # power cut only means its batch is cut from the output and read again.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        with self._tx():
            self._db.execute("INSERT OR IGNORE INTO sinks (sink) VALUES (?)", (sink,))
            self._db.execute(
                "DELETE FROM files WHERE sink = ? AND gone = 1 AND updated < ?",
                (sink, time.time() - GONE_RETENTION_SECONDS),
            )

    def _take_lock(self) -> int:
        tag = hashlib.sha1(self.sink.encode()).hexdigest()[:12]
        lock_path = self.path.with_name(f"{self.path.name}.{tag}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateLocked(
                f"another watcher is already running with state {self.path} for {self.sink}"
            ) from None
        return fd

    def close(self) -> None:
        with self._mutex:
            self._db.close()
        os.close(self._lock_fd)

    def _tx(self):
        db = self._db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                if not exc_type:
                    try:
                        db.execute("COMMIT")
                        return
                    except sqlite3.Error:
                        _rollback(db)  # a failed COMMIT (disk full) leaves the transaction open
                        raise
                _rollback(db)

        return _Tx()

    # -- reading ---------------------------------------------------------------------------

    def records(self) -> list[FileRecord]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT uid, dev, ino, name, head_len, head_sha, cursor, done, gone"
                " FROM files WHERE sink = ? ORDER BY uid",
                (self.sink,),
            ).fetchall()
        return [
            FileRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), bool(r[8]))
            for r in rows
        ]

    def out_length(self) -> int:
        with self._mutex:
            row = self._db.execute("SELECT out_length FROM sinks WHERE sink = ?", (self.sink,)).fetchone()
        return int(row[0]) if row else 0

    def incident_state(self) -> tuple[int, str | None]:
        """(committed length of the incident events file, the tracker's state then)."""
        with self._mutex:
            row = self._db.execute(
                "SELECT out_length, tracker FROM incident_sinks WHERE sink = ?", (self.sink,)
            ).fetchone()
        return (int(row[0]), row[1]) if row else (0, None)

    # -- identity changes (no output involved, committed at once) -----------------------------

    def add(self, dev: int, ino: int, name: str, head_len: int = 0, head_sha: str = "") -> int:
        with self._mutex, self._tx():
            cur = self._db.execute(
                "INSERT INTO files (sink, dev, ino, name, head_len, head_sha, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.sink, dev, ino, name, head_len, head_sha, time.time()),
            )
            assert cur.lastrowid is not None  # an INSERT always has one
            return cur.lastrowid

    def move(self, uid: int, dev: int, ino: int, name: str) -> None:
        """The content of `uid` now lives at (dev, ino, name): a rename, or a compressed twin."""
        with self._mutex, self._tx():
            self._db.execute(
                "UPDATE files SET dev = ?, ino = ?, name = ?, gone = 0, updated = ? WHERE uid = ?",
                (dev, ino, name, time.time(), uid),
            )

    def mark_gone(self, uid: int) -> None:
        with self._mutex, self._tx():
            self._db.execute("UPDATE files SET gone = 1, updated = ? WHERE uid = ?", (time.time(), uid))

    def forget(self) -> None:
        """--from-start: drop every checkpoint of this sink (the output is kept)."""
        with self._mutex, self._tx():
            self._db.execute("DELETE FROM files WHERE sink = ?", (self.sink,))

    # -- the exactly-once commit ------------------------------------------------------------

    def commit(self, checkpoints: list[Checkpoint], out_length: int | None,
               incidents: tuple[int, str] | None = None) -> None:
        """Checkpoints, the output's length and (headless) the incident events file's length
        with the incidents still open, in one transaction: all or nothing across a kill."""
        with self._mutex, self._tx():
            if incidents is not None:
                self._db.execute(
                    "INSERT INTO incident_sinks (sink, out_length, tracker) VALUES (?, ?, ?)"
                    " ON CONFLICT (sink) DO UPDATE SET out_length = excluded.out_length,"
                    " tracker = excluded.tracker",
                    (self.sink, incidents[0], incidents[1]),
                )
            now = time.time()
            self._db.executemany(
                "UPDATE files SET cursor = ?, head_len = ?, head_sha = ?, done = ?, updated = ?"
                " WHERE uid = ?",
                [(c.cursor, c.head_len, c.head_sha, int(c.done), now, c.uid) for c in checkpoints],
            )
            if out_length is not None:
                self._db.execute(
                    "UPDATE sinks SET out_length = ? WHERE sink = ?", (out_length, self.sink)
                )


def _rollback(db) -> None:
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction active (BEGIN itself failed): nothing to undo
