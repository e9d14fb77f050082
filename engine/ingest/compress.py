"""Rotated dumps are often compressed: recognise the codec by its magic bytes, not the name."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import zstandard

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
    import io

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
