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
HEADER_PREFIXES = ("Date first seen", "ts,te,td,", "firstSeen,", "cnt,af,")


def header_mask(texts: pl.Series) -> pl.Series:
    """Which lines are headers; literal prefix tests first, the regex only on candidates."""
    t = (
        texts.to_frame("t")
        .select(
            pl.any_horizontal([pl.col("t").str.starts_with(p) for p in HEADER_PREFIXES])
            | ((pl.col("t").str.len_bytes() < 8) & pl.col("t").str.contains("[", literal=True))
        )
        .to_series()
    )
    if not t.any():
        return t
    return t & texts.str.contains(ANY_HEADER)


TRAILER = (
    r"^(?:Summary:|Summary\s*$|Time window:|Total flows processed:|Total records processed:"
    r"|Sys:|No matching flows|flows,bytes,packets,avg_bps|[0-9]+(?:,[0-9]+){5}\s*$|\s*\]\s*$)"
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
