"""The headless watcher's output: scored flows appended to a JSON-lines file, exactly once.

The file only ever grows by whole batches that are fsync'ed before their checkpoint commits
(engine.live.state); on start it is cut back to the length of the last committed batch.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
from pathlib import Path

import polars as pl

from engine.core.errors import UserError
from engine.core.schema import SCORED_SCHEMA

_ISO = "%Y-%m-%dT%H:%M:%S%.3f"


def to_jsonl(scored: pl.DataFrame) -> bytes:
    """Canonical columns + score, verdict, reasons (and the flow's `incident` when the pipeline
    grouped it into one); timestamps ISO 8601 (as printed, no zone)."""
    columns = [*SCORED_SCHEMA, *(["incident"] if "incident" in scored.columns else [])]
    frame = scored.select(columns).with_columns(
        pl.col("ts_first").dt.to_string(_ISO), pl.col("ts_last").dt.to_string(_ISO)
    )
    buf = io.BytesIO()
    frame.write_ndjson(buf)
    return buf.getvalue()


class JsonlSink:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.length = 0
        self._fd: int | None = None

    @property
    def name(self) -> str:
        """Identifies this sink's checkpoints in the state database."""
        return f"jsonl:{self.path.resolve()}"

    def open(self, committed: int) -> str | None:
        """Open for appending at the last committed length; say what was repaired, if anything."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{self.path} is being written by another flowtriage watch") from None
        self._fd = fd
        size = os.fstat(fd).st_size
        note = None
        if size > committed:
            os.ftruncate(fd, committed)
            os.fsync(fd)
            note = (f"{self.path}: cut {size - committed} bytes written after the last checkpoint "
                    "(they are read and written again)")
            size = committed
        elif size < committed:
            note = (f"{self.path}: shorter than its checkpoint ({size} < {committed} bytes; was it "
                    "truncated or replaced?); appending at its end")
        self.length = size
        return note

    def append(self, scored: pl.DataFrame) -> int:
        """Append and fsync; return the new length, to be committed with the checkpoints."""
        if scored.height:
            fd = self._fd
            if fd is None:
                raise RuntimeError(f"{self.path}: append before open")
            data = memoryview(to_jsonl(scored))
            while data:
                try:
                    n = os.pwrite(fd, data, self.length)
                except OSError as exc:
                    exc.filename = exc.filename or str(self.path)
                    raise
                self.length += n
                data = data[n:]
            os.fsync(fd)
        return self.length

    def rewind(self, length: int) -> None:
        """Cut the file back to `length` (a batch that could not be written whole, or whose
        checkpoint could not be committed): its next append starts there again."""
        if self._fd is not None:
            os.ftruncate(self._fd, length)
        self.length = length

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def incidents_path(out: str | Path) -> Path:
    """Where the incident events of a headless output go: `alerts.jsonl` -> `alerts.incidents.jsonl`."""
    out = Path(out)
    return out.with_name(f"{out.stem}.incidents{out.suffix or '.jsonl'}")


class EventSink(JsonlSink):
    """Incident open/update/close events (engine.detect.incidents.IncidentEvent.record), one
    JSON object a line, appended and fsync'ed like the flows; same exactly-once rules."""

    def append_records(self, records: list[dict]) -> int:
        if records:
            fd = self._fd
            if fd is None:
                raise RuntimeError(f"{self.path}: append before open")
            data = memoryview("".join(json.dumps(r, sort_keys=False) + "\n" for r in records).encode())
            while data:
                n = os.pwrite(fd, data, self.length)
                self.length += n
                data = data[n:]
            os.fsync(fd)
        return self.length
