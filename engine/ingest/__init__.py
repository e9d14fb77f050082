"""Ingest: nfdump text dumps (every version's line/long/extended/csv/json output) -> flows.

A read goes: bytes (compress.py decompresses by magic bytes) -> line-aligned chunks, two
parsed at a time (reader.py) -> layout segments split at header lines and sniffed when
headerless (detect.py) -> one parser per family: text.py (line/long/extended/biline/bilong,
with fixedwidth.py as the fast path), csvfmt.py (48-column csv, 1.7.6+ csv, csv-fast),
jsonfmt.py (json array, ndjson). Every parser describes the canonical columns as polars
expressions from exprs.py; model.py holds what a read returns.

Choices a caller may rely on:
- `file` is the path as given; `line` is 1-based in the decompressed text (json: the line
  the flow's object starts on).
- Non-flow lines are SkippedLine(file, line, reason, text[:200]); reasons "header",
  "trailer" and "blank" (BENIGN_REASONS) are a dump's normal structure, the others
  ("not a flow record", "malformed flow record", "no header or recognisable record ...")
  are worth showing to a user.
- Records that end before they start (nfdump prints -2147483648d ... or
  18446744073709540.000) and durations over 366 days are kept with duration 0 and
  ts_last = ts_first, the same in every format.
- A field the format does not print is null: tcp_flags and tos for `-o line`/`biline` and
  the 1.7.6+ csv. The csv formats and csv-fast print no flow count: flows is 1 there.
- Text, csv and json timestamps are wall-clock as printed (naive); csv-fast epoch
  milliseconds are converted to the configured zone so every format agrees.
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
