"""Writing result frames to files, chosen by extension, atomically.

A batch run killed half-way must never leave a truncated OUT that looks finished, so every
writer targets a temporary file in the same directory and renames it into place.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class FrameWriter:
    """`write_frame` in pieces: append frames one at a time, and only the last one is held.

    JSON lines and CSV are appended to the temporary file as they come (CSV writes its header
    once); Parquet pieces are spooled to Arrow IPC files beside it and streamed into one
    Parquet file at the end. Nothing appears at `path` before `close()` succeeds; an error or
    a kill leaves at most a hidden `.part` file.
    """

    def __init__(self, path: str | Path, schema: dict[str, pl.DataType]):
        self.path = check_output(path)
        self.schema = schema
        self.rows = 0
        self._suffix = self.path.suffix.lower()
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.part")
        self._spool: list[Path] = []
        self._fh: Any = None if self._suffix == ".parquet" else open(self._tmp, "wb")  # noqa: SIM115

    def append(self, df: pl.DataFrame) -> None:
        if self._suffix == ".parquet":
            if df.height or not self._spool:
                piece = self._tmp.with_name(f"{self._tmp.name}.{len(self._spool)}.arrow")
                df.write_ipc(piece)
                self._spool.append(piece)
        elif self._suffix == ".csv":
            if df.height or self.rows == 0 and self._fh.tell() == 0:
                _flat(df).write_csv(self._fh, include_header=self._fh.tell() == 0)
        elif df.height:
            df.write_ndjson(self._fh)
        self.rows += df.height

    def close(self) -> Path:
        try:
            if self._suffix == ".parquet":
                if not self._spool:
                    self.append(pl.DataFrame(schema=self.schema))
                pl.scan_ipc(self._spool).sink_parquet(self._tmp)
            else:
                if self._suffix == ".csv" and self._fh.tell() == 0:
                    _flat(pl.DataFrame(schema=self.schema)).write_csv(self._fh)
                self._fh.close()
            os.replace(self._tmp, self.path)
        finally:
            self._cleanup()
        return self.path

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)
        self._cleanup()

    def _cleanup(self) -> None:
        for piece in self._spool:
            piece.unlink(missing_ok=True)
        self._spool = []

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
