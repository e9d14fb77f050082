"""Ingest: nfdump text dumps (every version's line/long/extended/csv/json output) -> flows.

See reader.py for the flow of a read and model.py for what it returns.
"""

from engine.ingest.model import BENIGN_REASONS, Cursor, ReadResult, SkippedLine
from engine.ingest.reader import parse_bytes, read_dump, read_flows

__all__ = [
    "BENIGN_REASONS",
    "Cursor",
    "ReadResult",
    "SkippedLine",
    "parse_bytes",
    "read_dump",
    "read_flows",
]
