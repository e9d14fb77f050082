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
import io
import lzma
import os
import zlib
from pathlib import Path
from typing import Any

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


MAGICS: tuple[bytes, ...] = tuple(magic for magic, _ in _MAGIC)


def codec_of(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def decompress(data: bytes, *, max_ratio: float | None = None) -> bytes:
    """Whole decompressed text; a stream cut off mid-write yields what could be decoded."""

    stream = TextStream(io.BytesIO(data), max_ratio=max_ratio)
    out = []
    try:
        while piece := stream.read(1 << 20):
            out.append(piece)
    except Truncated:
        pass
    except DecodeError:
        if not out and stream.codec is None:
            raise
    return b"".join(out)


def read_text_bytes(path: str | Path, *, max_ratio: float | None = None) -> bytes:
    """The text of a small file (a labels file), decompressed when its content is compressed.
    Opened by path, never as a glob pattern ('lab[1].csv' is that file)."""
    with open(path, "rb") as fh:
        return decompress(fh.read(), max_ratio=DEFAULT_MAX_RATIO if max_ratio is None else max_ratio)



class DecodeError(Exception):
    """Compressed data that cannot be decoded: corrupt, or a compression bomb."""


class Truncated(DecodeError):
    """The compressed stream ends before its end marker (cut short, or still being written)."""


class Bomb(DecodeError):
    """More text than max_decompressed_ratio times the compressed bytes read."""


BOMB_FLOOR = 64 << 20  # below this much text the ratio is not checked (tiny files compress absurdly)
DEFAULT_MAX_RATIO = 500.0
_PIECE = 1 << 16
_ZSTD_FEED = 1 << 12  # zstd's decompressobj has no output cap: feed it small pieces instead
_BROKEN = (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error, zstandard.ZstdError)


def _decompressor(codec: str):
    if codec == "gz":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if codec == "bz2":
        return bz2.BZ2Decompressor()
    if codec == "xz":
        return lzma.LZMADecompressor()
    return zstandard.ZstdDecompressor().decompressobj()


class TextStream:
    """The text of one open dump, read forward in bounded pieces, compressed or not.

    The codec is decided by the first bytes, never the name. Concatenated members (`cat a.gz
    b.gz`, pbzip2, multi-frame zstd) are read on. Memory stays near `read(n)`'s `n` whatever
    the ratio (each decoder call is capped). A stream that ends before its end marker raises
    Truncated, after every byte that decodes has been returned; data that is not what its
    magic says raises DecodeError; more than `max_ratio` times the compressed bytes (past
    BOMB_FLOOR) raises Bomb.
    """

    def __init__(self, fh, *, max_ratio: float | None = DEFAULT_MAX_RATIO):
        self._fh = fh
        head = fh.read(6)
        self.codec = codec_of(head)
        self._raw = head  # bytes read from the file, not yet decoded
        self._dec: Any = _decompressor(self.codec) if self.codec else None
        self._max_ratio = max_ratio
        self.compressed_in = len(head)
        self.text_out = 0
        self._file_eof = False
        self._done = False
        self._error: DecodeError | None = None  # raised on the read after the text before it

    def read(self, n: int) -> bytes:
        """Up to `n` bytes of text (fewer only at the end); b"" at the end."""
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        got = 0
        try:
            while got < n and not self._done:
                piece = self._next(n - got)
                if piece:
                    parts.append(piece)
                    got += len(piece)
        except DecodeError as exc:
            if not parts:
                raise
            self._error = exc
        self.text_out += got
        self._check_budget()
        return b"".join(parts)

    def close(self) -> None:
        self._done = True
        self._fh.close()

    def _check_budget(self) -> None:
        if self._dec is None or self._max_ratio is None or self.text_out <= BOMB_FLOOR:
            return
        if self.text_out > self._max_ratio * max(self.compressed_in, 1):
            raise Bomb(
                f"decompresses to more than {self._max_ratio:g} times its size "
                f"({self.text_out:,} bytes of text from {self.compressed_in:,}): a compression "
                "bomb? ([ingest] max_decompressed_ratio sets the limit)"
            )

    def _fill(self) -> bytes:
        """The undecoded bytes at hand, reading more from the file when there are none."""
        if not self._raw and not self._file_eof:
            chunk = self._fh.read(_PIECE)
            if chunk:
                self.compressed_in += len(chunk)
                self._raw = chunk
            else:
                self._file_eof = True
        data, self._raw = self._raw, b""
        return data

    def _next(self, want: int) -> bytes:
        if self._dec is None:  # plain text
            data = self._raw[:want] if self._raw else b""
            self._raw = self._raw[len(data):]
            if not data:
                data = self._fh.read(min(want, 1 << 20))
                self.compressed_in += len(data)
                if not data:
                    self._done = True
            return data
        try:
            return self._decode(want)
        except _BROKEN as exc:
            self._done = True
            raise DecodeError(f"corrupt {self.codec} data: {exc}") from None

    def _decode(self, want: int) -> bytes:
        dec = self._dec
        if self.codec == "gz":
            data = dec.unconsumed_tail or self._fill()
            if not data:
                return self._ended()
            out = dec.decompress(data, want)
            if dec.eof:
                self._member_end(dec.unused_data)
            return out
        if self.codec in ("bz2", "xz"):
            data = self._fill() if dec.needs_input else b""
            if dec.needs_input and not data:
                return self._ended()
            out = dec.decompress(data, want)
            if dec.eof:
                self._member_end(dec.unused_data)
            return out
        data = self._fill()
        if not data:
            return self._ended()
        self._raw = data[_ZSTD_FEED:]
        out = dec.decompress(data[:_ZSTD_FEED])
        if dec.eof:
            self._member_end(dec.unused_data + self._raw)
        return out

    def _member_end(self, unused: bytes) -> None:
        """One member/stream/frame ended: another may follow, else the text is complete."""
        self._raw = unused
        if not self._raw and not self._file_eof:
            self._raw = self._fh.read(_PIECE)
            self.compressed_in += len(self._raw)
        if not self._raw:
            self._done = True
            return
        if self.codec is not None and codec_of(self._raw[:6]) == self.codec:
            self._dec = _decompressor(self.codec)
            return
        if not self._raw.strip(b"\0"):  # zero padding after the stream (tape, some tools)
            rest = self._fh.read()
            if not rest.strip(b"\0"):
                self._done = True
                return
        self._done = True
        raise DecodeError(f"unexpected bytes after the end of the {self.codec} data")

    def _ended(self) -> bytes:
        self._done = True
        raise Truncated(f"the {self.codec} data ends early (truncated, or still being written)")
