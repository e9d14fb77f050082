"""Read dumps whole or incrementally: bytes -> lines -> layout segments -> flows + skipped lines."""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from engine.core.dumpfiles import (
    DEFAULT_MAX_RATIO,
    DecodeError,
    TextStream,
    Truncated,
    codec_of,
)
from engine.core.schema import empty_flows
from engine.ingest import csvfmt, detect, jsonfmt, text
from engine.ingest.lines import split_lines
from engine.ingest.model import (
    BLANK,
    HEADER,
    LONG_LINE,
    MALFORMED,
    NO_LAYOUT,
    NOT_A_FLOW,
    RAW_RECORD,
    TRAILER,
    Cursor,
    ReadResult,
    SkippedLine,
)

TEXT_FORMATS = ("line", "long", "extended", "biline", "bilong")
CHUNK_BYTES = 16 << 20  # plain files are parsed in line-aligned slices this size, two at a time
_SNIFF_LINES = 50
MAX_LINES = 1 << 20  # lines one parse step takes at most (a chunk of 16 MB may hold 16 M)
BLANK_RUN = 1000  # longer runs of blank lines are one skip entry (see _collapse_blank_runs)
# No nfdump text line comes near this (a flow line is 100-400 bytes); a longer line is
# skipped unread, so a zero-filled file or a line of millions of commas costs no memory.
MAX_LINE_BYTES = 64 << 10


def parse_bytes(
    data: bytes,
    *,
    file: str,
    cursor: Cursor | None = None,
    final: bool = False,
    timezone: str = "local",
) -> ReadResult:
    """Complete flows in `data` after `cursor` (offsets index into `data`, the decompressed text)."""
    cursor = cursor or Cursor()
    return _parse_region(data[cursor.offset :], file=file, cursor=cursor, final=final, tz=timezone)


def read_dump(
    path,
    cursor: Cursor | None = None,
    *,
    final: bool = False,
    timezone: str = "local",
    max_bytes: int | None = None,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
) -> ReadResult:
    """Complete flows of one dump after `cursor`, plain or compressed (decided by content).

    `max_bytes` caps how much text is consumed in this call (the cursor says where to go on);
    a line longer than the budget is read whole, one longer than MAX_LINE_BYTES is skipped.
    An unterminated last line is held back unless `final` is true. A compressed text that
    ends early or cannot be decoded keeps the flows before the damage and says why in
    `problem`; `max_ratio` is the decompression budget (engine.ingest.compress.Bomb).
    """
    parts = list(iter_dump(path, cursor, final=final, timezone=timezone, max_bytes=max_bytes,
                           max_ratio=max_ratio))
    return _merge(parts, parts[-1].cursor)


def iter_dump(
    path,
    cursor: Cursor | None = None,
    *,
    final: bool = False,
    timezone: str = "local",
    max_bytes: int | None = None,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[ReadResult]:
    """`read_dump` in pieces of about `chunk_bytes` of text each (at least one piece), so a
    caller can hold one piece at a time whatever the size of the dump."""
    file = str(path)
    cursor = cursor or Cursor()
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device would block or never end
        raise OSError(errno.EINVAL, "not a regular file", file)
    with open(path, "rb") as fh:
        if codec_of(fh.read(6)) is not None:
            fh.seek(0)
            yield from _iter_compressed(fh, file, cursor, final, timezone, max_bytes, max_ratio,
                                        chunk_bytes)
            return
        yield from _iter_plain(fh, file, cursor, final, timezone, max_bytes, chunk_bytes)


def _iter_plain(fh, file, cursor, final, tz, max_bytes, chunk_bytes) -> Iterator[ReadResult]:
    """Chunks of about chunk_bytes, at most _WORKERS of them in memory at a time: once the
    first fixed the layout, rounds of _WORKERS chunks are parsed side by side."""
    size = os.fstat(fh.fileno()).st_size
    budget = max_bytes if max_bytes is not None else max(size - cursor.offset, 0)
    current = cursor
    produced = False
    while True:
        if produced and current.format not in ("json", None) and not current.skipping:
            before = current.offset
            more, current = _parallel_chunks(
                fh, file, current, min(budget, _WORKERS * chunk_bytes), size, final, tz,
                chunk_bytes,
            )
            yield from more
            budget -= current.offset - before
            if budget <= 0 or current.offset >= size:
                break
            if current.offset > before:
                continue  # another round
        region = _plain_region(fh, current.offset, min(chunk_bytes, budget), size,
                               whole_line=not produced)
        at_eof = current.offset + len(region) >= size
        result = parse_step(region, file=file, cursor=current, final=final and at_eof, timezone=tz)
        consumed = result.cursor.offset - current.offset
        budget -= consumed
        current = result.cursor
        yield result
        produced = True
        if (at_eof and current.offset >= size) or budget <= 0 or consumed == 0:
            break
    if not produced:
        yield ReadResult(empty_flows(), current, current.format, ())


def _plain_region(fh, offset: int, want: int, size: int, *, whole_line: bool) -> bytes:
    """`want` bytes at `offset`; with `whole_line` (the first read of a call, which must make
    progress), where no line ends in them, the whole line instead (up to just past
    MAX_LINE_BYTES, enough to know it is too long)."""
    region = os.pread(fh.fileno(), want, offset)
    if (not whole_line or b"\n" in region or offset + len(region) >= size
            or len(region) > MAX_LINE_BYTES):
        return region
    line = os.pread(fh.fileno(), MAX_LINE_BYTES + 1, offset)
    return line[: line.find(b"\n") + 1 or len(line)]


def _iter_compressed(fh, file, cursor, final, tz, max_bytes, max_ratio, chunk_bytes):
    stream = TextStream(fh, max_ratio=max_ratio)
    current = cursor
    budget = max_bytes if max_bytes is not None else float("inf")
    pending = b""
    try:
        _discard(stream, cursor.offset)
        while True:
            want = int(min(chunk_bytes, max(budget - len(pending), 0)))
            fresh = stream.read(want) if want else b""
            data = pending + fresh
            eof = len(fresh) < want
            if eof:
                pending = data
                stream.read(1)  # raises what cut the text short, if anything did
            extra = b""
            if current == cursor and not eof and b"\n" not in data and len(data) <= MAX_LINE_BYTES:
                more = stream.read(MAX_LINE_BYTES + 1 - len(data))  # a whole line at least
                eof = not more
                cut = more.find(b"\n") + 1
                data, extra = (data + more[:cut], more[cut:]) if cut else (data + more, b"")
            result = parse_step(data, file=file, cursor=current, final=final and eof and not extra,
                                timezone=tz)
            consumed = result.cursor.offset - current.offset
            pending = data[consumed:] + extra
            budget -= consumed
            current = result.cursor
            if (eof and not pending) or budget <= 0 or consumed == 0:
                yield result
                return
            yield result
    except DecodeError as exc:
        error = exc
    # the text ends early or cannot be decoded further: the whole lines before it are kept
    tail = ReadResult(empty_flows(), current, current.format, ())
    if pending and isinstance(error, Truncated):
        tail = parse_step(pending, file=file, cursor=current, final=False, timezone=tz)
    problem = f"{error}; kept the flows before line {tail.cursor.line + 1}"
    yield dataclasses.replace(tail, problem=problem)


def _discard(stream, n: int) -> None:
    while n > 0:
        piece = stream.read(min(n, CHUNK_BYTES))
        if not piece:
            raise Truncated("the text is shorter than its checkpoint")
        n -= len(piece)


_WORKERS = 2


def _parallel_chunks(fh, file, start: Cursor, budget: int, size: int, final: bool, tz: str,
                     chunk_bytes: int = CHUNK_BYTES):
    """Parse line-aligned chunks concurrently (polars releases the GIL), then stitch them.

    Each chunk is parsed as if it began with the layout `start` has and line 0; the results
    are accepted in order while each chunk begins with the layout its predecessor ended in
    and consumed its whole range; line numbers are shifted afterwards. The first chunk that
    does not fit (a header changed the layout, a held-back line) ends the parallel run, and
    the caller goes on sequentially from there.
    """
    end = min(size, start.offset + budget)
    bounds = []
    offset = start.offset
    while offset < end:
        want = _line_aligned(fh, offset, min(chunk_bytes, end - offset), size)
        if want <= 0:
            break
        bounds.append((offset, want))
        offset += want
    if not bounds:
        return [], start
    fd = fh.fileno()

    def work(bound):
        off, length = bound
        at_eof = off + length >= size
        region = os.pread(fd, length, off)
        assumed = Cursor(offset=off, line=0, format=start.format, layout=start.layout)
        return parse_step(region, file=file, cursor=assumed, final=final and at_eof, timezone=tz)

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        parts = list(pool.map(work, bounds))
    accepted: list[ReadResult] = []
    current = start
    for i, ((off, length), part) in enumerate(zip(bounds, parts, strict=True)):
        whole = part.cursor.offset == off + length or i == len(bounds) - 1
        if (current.format, current.layout) != (start.format, start.layout) or not whole or (
            part.cursor.skipping
        ):
            break
        base = current.line
        flows = part.flows.with_columns(line=pl.col("line") + base) if base else part.flows
        skipped = tuple(SkippedLine(s.file, s.line + base, s.reason, s.text) for s in part.skipped)
        current = Cursor(
            offset=part.cursor.offset,
            line=base + part.cursor.line,
            format=part.cursor.format,
            layout=part.cursor.layout,
        )
        accepted.append(ReadResult(flows, current, current.format, skipped))
    return accepted, current


def _line_aligned(fh, offset: int, want: int, size: int) -> int:
    """Shrink a read so it ends just after a newline (no copy to trim a partial line later).

    Where no line ends within `want` the read stays `want` long and ends mid-line: the chunk
    holds the partial line back (or skips it, when it is too long), and the parallel run ends.
    """
    end = offset + want
    if end >= size:
        return size - offset
    probe = min(want, 1 << 16)
    fh.seek(end - probe)
    window = fh.read(probe)
    cut = window.rfind(b"\n")
    if cut >= 0:
        return want - probe + cut + 1
    if probe < want:  # a line longer than the probe: an earlier one may still end in range
        fh.seek(offset)
        cut = fh.read(want - probe).rfind(b"\n")
        if cut >= 0:
            return cut + 1
    return want  # no line ends in range: cut mid-line (parse_step holds or skips the rest)


def parse_step(
    data: bytes,
    *,
    file: str,
    cursor: Cursor,
    final: bool,
    timezone: str = "local",
    max_line: int = MAX_LINE_BYTES,
) -> ReadResult:
    """Flows in `data`, the text that follows `cursor` (data[0] is at cursor.offset).

    What every reader (batch and live, plain and compressed) parses with. Lines longer than
    `max_line` are skipped (counted, with their first 200 characters) without being parsed,
    also when they have not ended yet: the cursor then says `skipping` and the rest of the
    line is passed over when it comes. Unless `final`, an unterminated last line (of normal
    length) is held back: the cursor stops before it.
    """
    if data.count(b"\n") > MAX_LINES:
        # millions of tiny lines (blank ones, say): this many now, the rest in the next call,
        # so what one call holds follows the line count too, not only the bytes
        cut = _nth_newline(data, MAX_LINES) + 1
        return parse_step(data[:cut], file=file, cursor=cursor, final=False,
                          timezone=timezone, max_line=max_line)
    parts: list[ReadResult] = []
    if cursor.skipping:
        nl = data.find(b"\n")
        if nl < 0:
            end = dataclasses.replace(cursor, offset=cursor.offset + len(data), skipping=not final)
            return ReadResult(empty_flows(), end, end.format, ())
        cursor = dataclasses.replace(cursor, offset=cursor.offset + nl + 1, skipping=False)
        data = data[nl + 1 :]
    pos = 0
    for start, stop in _long_lines(data, max_line):
        if start > pos:
            part = _parse_region(data[pos:start], file=file, cursor=cursor, final=True, tz=timezone)
            parts.append(part)
            cursor = part.cursor
        line = cursor.line + 1
        text = data[start : min(stop, start + 200)].decode("utf-8", "replace")
        reason = f"{LONG_LINE} (over {max_line:,} bytes)"
        ended = stop < len(data)
        cursor = dataclasses.replace(cursor, offset=cursor.offset + (stop - start) + ended,
                                     line=line, skipping=not ended and not final)
        parts.append(ReadResult(empty_flows(), cursor, cursor.format,
                                (SkippedLine(file, line, reason, text),)))
        pos = stop + 1
    if pos < len(data):
        parts.append(_parse_region(data[pos:], file=file, cursor=cursor, final=final, tz=timezone))
    if not parts:
        return ReadResult(empty_flows(), cursor, cursor.format, ())
    return _merge(parts, parts[-1].cursor)


def _nth_newline(data: bytes, n: int) -> int:
    import numpy as np

    return int(np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)[n - 1])


def _long_lines(data: bytes, max_line: int) -> list[tuple[int, int]]:
    """[start, stop) of every line longer than max_line (stop: its newline, or the end)."""
    if len(data) <= max_line:
        return []
    import numpy as np

    nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], nl + 1))
    stops = np.concatenate((nl, [len(data)]))
    long = np.flatnonzero(stops - starts > max_line)
    return [(int(starts[i]), int(stops[i])) for i in long]


def read_flows(
    paths: Iterable, *, timezone: str = "local"
) -> tuple[pl.DataFrame, list[ReadResult]]:
    """Every file read whole (final=True); flows concatenated in the order given."""
    paths = list(paths)
    if len(paths) == 1:
        results = [read_dump(paths[0], final=True, timezone=timezone)]
    else:
        # small rotated dumps are one chunk each: overlap whole files instead
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            results = list(pool.map(lambda p: read_dump(p, final=True, timezone=timezone), paths))
    frames = [r.flows for r in results if r.flows.height]
    flows = pl.concat(frames, rechunk=False) if frames else empty_flows()
    return flows, results


def _merge(results: list[ReadResult], cursor: Cursor) -> ReadResult:
    if len(results) == 1:
        return results[0]
    frames = [r.flows for r in results if r.flows.height]
    flows = pl.concat(frames, rechunk=False) if frames else empty_flows()
    skipped = tuple(s for r in results for s in r.skipped)
    problem = next((r.problem for r in results if r.problem), None)
    return ReadResult(flows=flows, cursor=cursor, format=cursor.format, skipped=skipped,
                      problem=problem)


def _parse_region(region: bytes, *, file: str, cursor: Cursor, final: bool, tz: str) -> ReadResult:
    if not final:
        region = region[: region.rfind(b"\n") + 1]
    if not region:
        return ReadResult(empty_flows(), cursor, cursor.format, ())
    fast = _csv_fast_path(region, file=file, cursor=cursor, final=final, tz=tz)
    if fast is not None:
        return fast
    return _parse_lines(region, file=file, cursor=cursor, final=final, tz=tz)


def _csv_fast_path(region: bytes, *, file: str, cursor: Cursor, final: bool, tz: str):
    """A region of one csv layout: the data lines go straight to polars' csv reader."""
    first_nl = region.find(b"\n")
    first_line = region[: first_nl if first_nl >= 0 else len(region)].decode("utf-8", "replace")
    header_fmt = detect.format_of_header(first_line)
    fmt = header_fmt or cursor.format
    if fmt not in csvfmt.LAYOUTS or first_nl < 0:
        return None
    # No scan for other headers here: any foreign line fails the typed read or validation
    # below, and the exact line path takes over.
    body_start = first_nl + 1 if header_fmt else 0
    body_end = len(region)
    # the Summary block closes a dump: look for it only near the end
    tail_from = max(body_start, len(region) - 512)
    for marker in csvfmt.TRAILER_MARKERS:
        pos = region.find(marker, max(tail_from - 1, 0))
        if pos >= 0:
            body_end = min(body_end, pos + 1)
    body = region[body_start:body_end]
    if not body:
        return None
    head_lines = 1 if header_fmt else 0
    parsed = csvfmt.parse_csv_body(
        csvfmt.LAYOUTS[fmt], body, cursor.line + head_lines + 1, file=file, timezone=tz
    )
    if parsed is None:
        return None
    flows, body_lines = parsed
    layout = first_line if header_fmt else cursor.layout
    parts = [flows]
    skipped: list[SkippedLine] = []
    if header_fmt:
        skipped.append(SkippedLine(file, cursor.line + 1, HEADER, first_line[:200]))
    tail = region[body_end:]
    end_cursor = Cursor(
        offset=cursor.offset + body_end,
        line=cursor.line + head_lines + body_lines,
        format=fmt,
        layout=layout,
    )
    if tail:
        rest = _parse_lines(tail, file=file, cursor=end_cursor, final=final, tz=tz)
        parts.append(rest.flows)
        skipped.extend(rest.skipped)
        end_cursor = rest.cursor
    frames = [p for p in parts if p.height]
    out = pl.concat(frames, rechunk=False) if frames else empty_flows()
    return ReadResult(out, end_cursor, end_cursor.format, tuple(skipped))


def _parse_lines(region: bytes, *, file: str, cursor: Cursor, final: bool, tz: str) -> ReadResult:
    texts = split_lines(region)
    lines = pl.DataFrame(
        {
            "n": pl.int_range(
                cursor.line + 1, cursor.line + 1 + texts.len(), dtype=pl.Int64, eager=True
            ),
            "text": texts,
        }
    )
    is_header = detect.header_mask(texts)
    header_rows = is_header.arg_true().to_list()
    # segments: [start, stop) row ranges, each with one layout
    bounds = [0, *header_rows, texts.len()]
    fmt, layout = cursor.format, cursor.layout
    flows_parts: list[pl.DataFrame] = []
    rest_parts: list[pl.DataFrame] = []
    held = 0
    for i in range(len(bounds) - 1):
        start, stop = bounds[i], bounds[i + 1]
        if i > 0:
            header_text = texts[start]
            fmt = detect.format_of_header(header_text)
            layout = header_text
            start += 1
        seg = lines.slice(start, stop - start)
        if seg.height == 0:
            continue
        if fmt is None:
            fmt = _sniff(seg["text"])
            layout = f"sniffed:{fmt}" if fmt else None
        if fmt is None:
            rest_parts.append(seg.with_columns(no_layout=pl.lit(True)))
            continue
        is_last = i == len(bounds) - 2
        seg_flows, seg_rest, seg_held = _parse_segment(
            fmt, seg, file=file, tz=tz, final=final or not is_last
        )
        if seg_held:
            held = seg_held
        flows_parts.append(seg_flows)
        rest_parts.append(seg_rest.with_columns(no_layout=pl.lit(False)))
    rest_parts.append(lines.filter(is_header).with_columns(no_layout=pl.lit(False)))
    skipped = _classify(rest_parts, file)
    consumed_lines = texts.len() - held
    if held:
        cut = len(region)
        for _ in range(held):
            cut = region.rfind(b"\n", 0, cut - 1) + 1 if cut > 0 else 0
        offset = cursor.offset + cut
    else:
        offset = cursor.offset + len(region)
    new_cursor = Cursor(offset=offset, line=cursor.line + consumed_lines, format=fmt, layout=layout)
    frames = [f for f in flows_parts if f.height]
    flows = pl.concat(frames, rechunk=False) if frames else empty_flows()
    if len(frames) > 1:
        flows = flows.sort("line", maintain_order=True)
    return ReadResult(flows, new_cursor, fmt, skipped)


def _sniff(texts: pl.Series) -> str | None:
    candidates = texts.filter(texts.str.contains(detect.LOOKS_LIKE_RECORD)).head(_SNIFF_LINES)
    for line in candidates.to_list():
        found = detect.sniff(line)
        if found:
            return found
    return None


def _parse_segment(fmt: str, seg: pl.DataFrame, *, file: str, tz: str, final: bool):
    if fmt in TEXT_FORMATS:
        flows, rest = text.parse_text(seg, file=file)
        return flows, rest, 0
    if fmt in csvfmt.LAYOUTS:
        flows, rest = csvfmt.parse_csv_lines(csvfmt.LAYOUTS[fmt], seg, file=file, timezone=tz)
        return flows, rest, 0
    if fmt == "ndjson":
        flows, rest = jsonfmt.parse_ndjson(seg, file=file)
        return flows, rest, 0
    if fmt == "json":
        return jsonfmt.parse_json(seg, file=file, final=final)
    raise AssertionError(f"unknown format {fmt}")


def _classify(parts: list[pl.DataFrame], file: str) -> tuple[SkippedLine, ...]:
    parts = [p.select("n", "text", "no_layout") for p in parts if p.height]
    if not parts:
        return ()
    rest = pl.concat(parts).sort("n")
    t = pl.col("text")
    blank = t.str.strip_chars() == ""
    # by shape, not position, so a block split between two reads is still recognised
    raw_block = t.str.contains(detect.RAW_RECORD_LINE)
    reasons = rest.select(
        "n",
        pl.col("text").str.slice(0, 200),
        reason=pl.when(blank)
        .then(pl.lit(BLANK))
        .when(t.str.contains(detect.ANY_HEADER))
        .then(pl.lit(HEADER))
        .when(t.str.contains(detect.TRAILER))
        .then(pl.lit(TRAILER))
        .when(pl.col("no_layout"))
        .then(pl.lit(NO_LAYOUT))
        .when(raw_block)
        .then(pl.lit(RAW_RECORD))
        .when(t.str.contains(detect.LOOKS_LIKE_RECORD))
        .then(pl.lit(MALFORMED))
        .otherwise(pl.lit(NOT_A_FLOW)),
    )
    if reasons.height > BLANK_RUN:
        reasons = _collapse_blank_runs(reasons)
    return tuple(SkippedLine(file, n, reason, line) for n, line, reason in reasons.iter_rows())


def _collapse_blank_runs(reasons: pl.DataFrame) -> pl.DataFrame:
    """A run of more than BLANK_RUN blank lines is one skip entry at its first line, its text
    saying how many lines and up to where (32 MB of newlines would otherwise be 32 million
    entries, gigabytes of them)."""
    blank = pl.col("reason") == BLANK
    starts = (blank != blank.shift(1, fill_value=False)) | (pl.col("n").diff().fill_null(1) != 1)
    runs = reasons.with_columns(_run=starts.cum_sum()).with_columns(
        _size=pl.len().over("_run"), _first=pl.col("n").min().over("_run"),
        _last=pl.col("n").max().over("_run"),
    )
    long = blank & (pl.col("_size") > BLANK_RUN)
    return runs.filter(~long | (pl.col("n") == pl.col("_first"))).select(
        "n",
        pl.when(long)
        .then(pl.format("{} blank lines, {} to {}", "_size", "_first", "_last"))
        .otherwise(pl.col("text"))
        .alias("text"),
        "reason",
    )
