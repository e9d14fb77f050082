"""Writing result frames to files, chosen by extension, atomically.

A batch run killed half-way must never leave a truncated OUT that looks finished, so every
writer targets a temporary file in the same directory and renames it into place.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl

from engine.core.errors import UserError

_WRITERS: dict[str, Callable[[pl.DataFrame, Path], None]] = {
    ".csv": lambda df, p: df.write_csv(p),
    ".parquet": lambda df, p: df.write_parquet(p),
    ".jsonl": lambda df, p: df.write_ndjson(p),
    ".ndjson": lambda df, p: df.write_ndjson(p),
}
FORMATS: tuple[str, ...] = tuple(_WRITERS)


def check_output(path: str | Path) -> Path:
    """Refuse an unusable OUT before any work is done (unknown format, missing directory)."""
    path = Path(path)
    if path.suffix.lower() not in _WRITERS:
        raise UserError(
            f"{path}: unknown output format {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(FORMATS)}"
        )
    if not path.parent.is_dir():
        raise UserError(f"{path}: directory {path.parent} does not exist")
    return path


def write_frame(df: pl.DataFrame, path: str | Path) -> Path:
    """Write `df` to `path` as CSV, Parquet or JSON lines (by extension); return the path."""
    path = check_output(path)
    writer = _WRITERS[path.suffix.lower()]
    # Same directory, so the rename is atomic; a plain name (not mkstemp) keeps umask permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        writer(_flat(df) if path.suffix.lower() == ".csv" else df, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _flat(df: pl.DataFrame) -> pl.DataFrame:
    # CSV has no nested types: list columns (e.g. a source's activity buckets) become "1 2 3".
    nested = [name for name, dtype in df.schema.items() if isinstance(dtype, pl.List)]
    if not nested:
        return df
    return df.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join(" ") for name in nested
    )
