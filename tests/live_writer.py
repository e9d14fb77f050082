"""A dump directory that behaves like nfcapd + nfdump + gzip + nfexpire, for the live tests.

Real flow lines from the bundled routerlike sample dumps are written in random chunk sizes (so
the watcher often sees half a line), as `nfcapd.current.N` renamed to `nfcapd.YYYYMMDDhhmm.txt`
(rotation) or written in place; finished dumps are gzipped (X.gz written, then X removed),
truncated and reused for a new dump, and deleted. Truncation and deletion only touch dumps the
watcher has committed to the end (read from its state DB), as a real expiry would only
remove old files: losing unread text is not what these tests are about.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from engine.live.tail import parse_bytes, strip_compression

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "lab-dev" / "routerlike"
KEY = ("line", "ts_first", "src_addr", "src_port", "dst_addr", "dst_port", "packets", "bytes")


def sample_lines() -> tuple[bytes, list[bytes]]:
    header, lines = b"", []
    for path in sorted(SAMPLES.glob("nfcapd.*.txt.gz")):
        text = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
        header = text[0]
        lines.extend(text[1:])
    return header, lines


@dataclass
class DumpWriter:
    directory: Path
    state_db: Path
    rng: random.Random
    written: list[tuple[str, bytes]] = field(default_factory=list)  # (final name, whole text)
    renamed: dict[str, str] = field(default_factory=dict)  # temp name -> final name
    plain: list[str] = field(default_factory=list)  # finished plain dumps
    packed: list[str] = field(default_factory=list)  # finished .gz dumps
    actions: Counter = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)
    _n: int = 0

    def __post_init__(self):
        self.header, self.pool = sample_lines()

    # -- the dump text -------------------------------------------------------------------------

    def _text(self) -> bytes:
        n = self.rng.randint(30, 700)
        start = self.rng.randrange(0, len(self.pool) - n)
        return self.header + b"".join(self.pool[start:start + n])

    def _dribble(self, path: Path, text: bytes, mode: str = "ab") -> None:
        """Write `text` in random chunks with short pauses (never long enough to 'settle')."""
        with open(path, mode) as fh:
            i = 0
            while i < len(text):
                step = self.rng.randint(1, 12000)
                fh.write(text[i:i + step])
                fh.flush()
                i += step
                time.sleep(self.rng.uniform(0, 0.01))

    def _name(self) -> str:
        self._n += 1
        return f"nfcapd.2027011{self._n // 1440}{(self._n // 60) % 24:02d}{self._n % 60:02d}.txt"

    # -- what nfcapd, gzip and nfexpire do --------------------------------------------------------

    def rotate(self) -> None:
        """nfcapd-style: written as nfcapd.current.N, renamed when complete."""
        final = self._name()
        temp = f"nfcapd.current.{self._n}"
        text = self._text()
        self._dribble(self.directory / temp, text, "wb")
        os.rename(self.directory / temp, self.directory / final)
        self.renamed[temp] = final
        self.written.append((final, text))
        self.plain.append(final)
        self.actions["rotate"] += 1
        self.log.append(f"{time.time():.2f} rotate {final}")

    def append_in_place(self) -> None:
        final = self._name()
        text = self._text()
        self._dribble(self.directory / final, text, "wb")
        self.written.append((final, text))
        self.plain.append(final)
        self.actions["in place"] += 1
        self.log.append(f"{time.time():.2f} in place {final}")

    def compress(self) -> None:
        """gzip: X.gz appears (written in pieces), then X is removed. Read or not."""
        if not self.plain:
            return
        name = self.plain.pop(self.rng.randrange(len(self.plain)))
        data = gzip.compress((self.directory / name).read_bytes())
        self._dribble(self.directory / f"{name}.gz", data, "wb")
        os.unlink(self.directory / name)
        self.packed.append(f"{name}.gz")
        self.actions["gzip"] += 1
        self.log.append(f"{time.time():.2f} gzip {name}")

    def _consumed(self, name: str) -> bool:
        """Has the watcher committed this file's current text to its end? (Its newest checkpoint
        for the inode must carry the fingerprint of this text, not of an earlier one.)"""
        path = self.directory / name
        try:
            text = path.read_bytes()
            st = path.stat()
            db = sqlite3.connect(f"file:{self.state_db}?mode=ro", uri=True, timeout=5)
            try:
                row = db.execute(
                    "SELECT cursor, done, head_len, head_sha FROM files WHERE dev = ? AND ino = ?"
                    " AND gone = 0 ORDER BY uid DESC LIMIT 1", (st.st_dev, st.st_ino)).fetchone()
            finally:
                db.close()
        except (sqlite3.Error, FileNotFoundError):
            return False
        if row is None or row[0] is None or not row[2]:
            return False
        if name.endswith(".gz"):
            text = gzip.decompress(text)
        if hashlib.sha256(text[: row[2]]).hexdigest() != row[3]:
            return False
        return bool(row[1]) or json.loads(row[0])["offset"] >= len(text)

    def truncate_and_reuse(self) -> None:
        """copytruncate without the copy: a fully read dump is cut to 0 and a new dump written."""
        ready = [n for n in self.plain if self._consumed(n)]
        if not ready:
            return
        name = self.rng.choice(ready)
        text = self._text()
        with open(self.directory / name, "r+b") as fh:
            fh.truncate(0)
        self._dribble(self.directory / name, text, "ab")
        self.written.append((name, text))
        self.actions["truncate"] += 1
        self.log.append(f"{time.time():.2f} truncate {name}")

    def expire(self) -> None:
        """nfexpire: delete the oldest fully read dump, plain or compressed."""
        ready = [n for n in self.packed + self.plain if self._consumed(n)]
        if not ready:
            return
        name = ready[0]
        os.unlink(self.directory / name)
        (self.packed if name in self.packed else self.plain).remove(name)
        self.actions["expire"] += 1
        self.log.append(f"{time.time():.2f} expire {name}")

    def step(self) -> None:
        r = self.rng.random()
        if r < 0.35:
            self.rotate()
        elif r < 0.6:
            self.append_in_place()
        elif r < 0.75:
            self.compress()
        elif r < 0.85:
            self.truncate_and_reuse()
        else:
            self.expire()

    # -- what the output must hold -----------------------------------------------------------------

    def logical_name(self, path: str) -> str:
        name = strip_compression(os.path.basename(path))
        return self.renamed.get(name, name)

    def expected(self) -> Counter:
        keys: Counter = Counter()
        for name, text in self.written:
            flows = parse_bytes(text, file=name, final=True).flows
            keys.update((name, *row) for row in flows.select(KEY).iter_rows())
        return keys

    def found(self, out: Path) -> Counter:
        # a copy, up to the last newline: the watcher may be appending (or cutting an
        # uncommitted tail) right now, and a memory-mapped read would fault on a cut file
        data = out.read_bytes() if out.exists() else b""
        data = data[: data.rfind(b"\n") + 1]
        if not data:
            return Counter()
        frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
        frame = frame.with_columns(
            pl.col("ts_first").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3f", time_unit="ms"),
            pl.col("file").map_elements(self.logical_name, return_dtype=pl.String),
        )
        return Counter(frame.select("file", *KEY).iter_rows())
