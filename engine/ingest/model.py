"""What a read returns: flows, where to resume, and every line that was not a flow."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import polars as pl

# Reasons a line is not a flow. The first three are expected structure of a healthy dump
# (BENIGN_REASONS); the others point at damage or at content we do not read as flows.
BLANK = "blank"
HEADER = "header"
TRAILER = "trailer"
NOT_A_FLOW = "not a flow record"
MALFORMED = "malformed flow record"
NO_LAYOUT = "no header or recognisable record before this line"
RAW_RECORD = "raw record block (-o raw), not read"
LONG_LINE = "line too long, not read"
BENIGN_REASONS: frozenset[str] = frozenset({BLANK, HEADER, TRAILER})


@dataclass(frozen=True)
class Cursor:
    """Resume point in one dump. Offsets and lines refer to the decompressed text."""

    offset: int = 0
    line: int = 0
    format: str | None = None
    layout: str | None = None
    skipping: bool = False  # inside a line too long to read: pass over it up to its newline

    def to_json(self) -> str:
        data = asdict(self)
        if not self.skipping:  # checkpoints written before the field stay byte-identical
            del data["skipping"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        data = json.loads(text)
        return cls(
            offset=int(data.get("offset", 0)),
            line=int(data.get("line", 0)),
            format=data.get("format"),
            layout=data.get("layout"),
            skipping=bool(data.get("skipping", False)),
        )


@dataclass(frozen=True)
class SkippedLine:
    file: str
    line: int
    reason: str
    text: str  # at most 200 characters of the line, as read (untrusted: never markup)


@dataclass(frozen=True)
class ReadResult:
    flows: pl.DataFrame
    cursor: Cursor
    format: str | None
    skipped: tuple[SkippedLine, ...]
    problem: str | None = None  # the text could not be read to its end (truncated, corrupt)

    @property
    def bad_lines(self) -> tuple[SkippedLine, ...]:
        """Skipped lines that are not the normal header/trailer/blank structure of a dump."""
        return tuple(s for s in self.skipped if s.reason not in BENIGN_REASONS)
