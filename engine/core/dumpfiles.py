"""Dump files: which files in a directory are dumps, a dump's name, and its compression.

The one definition of each, shared by the watcher, the batch commands, the label store, labels
files and the TUI:
- a dump is a regular file whose name matches `[watch] glob`, is not hidden (a writer's
  temporary `.name.XXXX`) and does not end in one of NOT_DUMPS (our own state and model files,
  a writer's `.part`);
- a dump's name, as labels and provenance name it, is its base name without directory and
  without a compression suffix (`/x/nfcapd.202611220835.txt.gz` -> `nfcapd.202611220835.txt`);
- a rotated dump is often compressed: the codec is recognised by its magic bytes, not the name.
"""

from __future__ import annotations

import bz2
import fnmatch
import gzip
import io
import lzma
import os
from pathlib import Path

import polars as pl
import zstandard

COMPRESSION_SUFFIXES: tuple[str, ...] = (".gz", ".bz2", ".xz", ".zst")
NOT_DUMPS: tuple[str, ...] = (".json", ".skops", ".part", ".sqlite", ".sqlite-wal", ".sqlite-shm")
_COMPRESSION_RE = r"\.(?:gz|bz2|xz|zst)$"


def is_dump(name: str, glob: str = "*") -> bool:
    """Whether a file called `name` (a base name) is a dump under `glob`."""
    return (
        not name.startswith(".") and not name.endswith(NOT_DUMPS) and fnmatch.fnmatch(name, glob)
    )


def list_dumps(directory: str | Path, glob: str = "*", *, recursive: bool = False) -> list[Path]:
    """The dumps in `directory` (and below it when `recursive`), sorted by directory and name:
    rotation order for nfcapd names."""
    found: list[Path] = []
    if recursive:
        for root, _dirs, files in os.walk(directory):
            found.extend(Path(root) / n for n in files if is_dump(n, glob))
    else:
        found = [Path(e.path) for e in os.scandir(directory) if is_dump(e.name, glob)]
    return sorted((p for p in found if p.is_file()), key=lambda p: (str(p.parent), p.name))


def dump_name(path: str | Path | None) -> str | None:
    """A dump's name as provenance and labels files use it (see the module docstring)."""
    if path is None:
        return None
    name = Path(str(path)).name
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def dump_name_expr(path: pl.Expr) -> pl.Expr:
    """dump_name over a column of paths."""
    return path.str.replace(r"^.*[/\\]", "").str.replace(_COMPRESSION_RE, "")

_MAGIC = (
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zst"),
)


def codec_of(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def decompress(data: bytes) -> bytes:
    """Whole decompressed text; a stream cut off mid-write yields what could be decoded."""
    codec = codec_of(data[:6])
    if codec is None:
        return data
    if codec == "zst":
        out = []
        reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        try:
            while chunk := reader.read(1 << 20):
                out.append(chunk)
        except zstandard.ZstdError:
            pass
        return b"".join(out)
    module = {"gz": gzip, "bz2": bz2, "xz": lzma}[codec]
    try:
        return module.decompress(data)
    except (EOFError, OSError, lzma.LZMAError):
        return _partial(module, data)


def _partial(module, data: bytes) -> bytes:
    """A compressed file still being written ends early: keep every byte that decodes."""
    opener = {gzip: gzip.GzipFile, bz2: bz2.BZ2File, lzma: lzma.LZMAFile}[module]
    out = []
    with opener(fileobj=io.BytesIO(data)) as stream:
        try:
            while chunk := stream.read(1 << 20):
                out.append(chunk)
        except (EOFError, OSError, lzma.LZMAError):
            pass
    return b"".join(out)


def read_text_bytes(path: str | Path) -> bytes:
    with open(path, "rb") as fh:
        return decompress(fh.read())
