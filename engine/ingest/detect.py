"""Which nfdump output a piece of text is, from its header line or, failing that, a record."""

from __future__ import annotations

import re

import polars as pl

from engine.ingest import csvfmt, jsonfmt, text

# (regex on a header line, format name or None when the header itself names it)
HEADERS: tuple[tuple[str, str | None], ...] = (
    (text.HEADER, None),
    (csvfmt.CSV48.header, "csv"),
    (csvfmt.CSV176.header, "csv-1.7.6"),
    (csvfmt.CSVFAST.header, "csv-fast"),
    (jsonfmt.ARRAY_START, "json"),
)
ANY_HEADER = "|".join(f"(?:{pattern})" for pattern, _ in HEADERS)


def header_mask(texts: pl.Series) -> pl.Series:
    """Which lines are headers: one cheap anchored test, the full regex only on candidates."""
    candidates = texts.str.contains(r"^\s*[Dtfc\[]")
    if not candidates.any():
        return candidates
    return candidates & texts.str.contains(ANY_HEADER)


TRAILER = (
    r"^(?:Summary:|Summary\s*$|Time window:|Total flows processed:|Total records processed:"
    r"|Sys:|No matching flows|flows,bytes,packets,avg_bps|[0-9]+(?:,[0-9]+){5}\s*$|\s*\]\s*$)"
)
# `-o raw`: "Flow Record:", indented "key = value" lines, then a hex dump of the payload
RAW_RECORD_LINE = (
    r"^(?:Flow Record:|  [A-Za-z][A-Za-z0-9 /_.-]*= |[0-9A-F]{2}(?: {1,2}[0-9A-F]{2})* +\|)"
)
LOOKS_LIKE_RECORD = r"^\s*(?:[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]|[0-9]+,[0-9]+,[0-9]{9,},|\{)"

_HEADERS_PY = [(re.compile(p), name) for p, name in HEADERS]
_CSV_RECORDS = [(re.compile(layout.record), layout.name) for layout in csvfmt.LAYOUTS.values()]


def format_of_header(line: str) -> str | None:
    for pattern, name in _HEADERS_PY:
        if pattern.search(line):
            return name or text.format_of_header(line)
    return None


def sniff(line: str) -> str | None:
    """The format a headerless record belongs to, or None."""
    found = text.sniff_record(line)
    if found:
        return found
    for pattern, name in _CSV_RECORDS:
        if pattern.search(line):
            return name
    stripped = line.strip()
    if stripped.startswith('{"') and stripped.endswith("}"):
        return "ndjson"
    if stripped == "{" or re.match(r'^"[A-Za-z0-9_]+"\s*:', stripped):
        return "json"
    return None
