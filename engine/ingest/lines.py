"""Split a text buffer into its lines, as one String column, without a Python loop per line."""

from __future__ import annotations

import io

import polars as pl


def split_lines(buf: bytes) -> pl.Series:
    """One row per line of `buf` (the last line may lack its newline); empty lines are ''."""
    if not buf:
        return pl.Series("text", [], dtype=pl.String)
    expected = buf.count(b"\n") + (0 if buf.endswith(b"\n") else 1)
    try:
        frame = pl.read_csv(
            io.BytesIO(buf),
            has_header=False,
            separator="\x01",
            quote_char=None,
            schema={"text": pl.String},
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
            raise_if_empty=False,
        )
        text = frame["text"]
        if text.len() != expected or b"\x01" in buf:
            raise ValueError("line count mismatch")
    except Exception:  # any reader quirk: fall back to an exact, slower split
        body = buf[:-1] if buf.endswith(b"\n") else buf
        text = pl.Series("text", body.decode("utf-8", "replace").split("\n"), dtype=pl.String)
    text = text.fill_null("")
    if b"\r" in buf:
        text = text.str.strip_suffix("\r")
    return text.alias("text")
