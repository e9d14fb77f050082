"""Read dumps whole or incrementally: bytes -> lines -> layout segments -> flows + skipped lines."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from engine.core.dumpfiles import codec_of, decompress
from engine.core.schema import empty_flows
from engine.ingest import csvfmt, detect, jsonfmt, text
from engine.ingest.lines import split_lines
from engine.ingest.model import (
    BLANK,
    HEADER,
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
) -> ReadResult:
    """Complete flows of one dump after `cursor`; compressed dumps are decompressed whole.

    `max_bytes` caps how much text is consumed in this call (the cursor says where to go on).
    An unterminated last line is held back unless `final` is true.
    """
    file = str(path)
    cursor = cursor or Cursor()
    with open(path, "rb") as fh:
        head = fh.read(6)
        if codec_of(head) is not None:
            fh.seek(0)
            data = decompress(fh.read())
            region = data[cursor.offset :]
            at_eof = max_bytes is None or len(region) <= max_bytes
            if not at_eof:
                # whole lines within the budget; a line longer than the budget is read whole
                end = region.rfind(b"\n", 0, max_bytes) + 1 or region.find(b"\n") + 1
                region = region[: end or len(region)]
                at_eof = end == 0
            del data
            return _parse_region(
                region, file=file, cursor=cursor, final=final and at_eof, tz=timezone
            )
        size = os.fstat(fh.fileno()).st_size
        budget = max_bytes if max_bytes is not None else max(size - cursor.offset, 0)
        results: list[ReadResult] = []
        current = cursor
        parallel_tried = False
        while True:
            want = _line_aligned(
                fh, current.offset, min(CHUNK_BYTES, budget), size, progress=not results
            )
            region = os.pread(fh.fileno(), want, current.offset)
            at_eof = current.offset + len(region) >= size
            result = _parse_region(
                region, file=file, cursor=current, final=final and at_eof, tz=timezone
            )
            results.append(result)
            consumed = result.cursor.offset - current.offset
            budget -= consumed
            current = result.cursor
            if at_eof or budget <= 0 or consumed == 0:
                break
            if not parallel_tried and current.format not in ("json", None):
                # the first chunk fixed the layout: the rest can be parsed side by side
                parallel_tried = True
                before = current.offset
                more, current = _parallel_chunks(fh, file, current, budget, size, final, timezone)
                results.extend(more)
                budget -= current.offset - before
                if budget <= 0 or (more and more[-1].cursor.offset >= size):
                    break
    return _merge(results, current)


_WORKERS = 2


def _parallel_chunks(fh, file, start: Cursor, budget: int, size: int, final: bool, tz: str):
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
        want = _line_aligned(fh, offset, min(CHUNK_BYTES, end - offset), size)
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
        return _parse_region(region, file=file, cursor=assumed, final=final and at_eof, tz=tz)

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        parts = list(pool.map(work, bounds))
    accepted: list[ReadResult] = []
    current = start
    for i, ((off, length), part) in enumerate(zip(bounds, parts, strict=True)):
        whole = part.cursor.offset == off + length or i == len(bounds) - 1
        if (current.format, current.layout) != (start.format, start.layout) or not whole:
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


def _line_aligned(fh, offset: int, want: int, size: int, *, progress: bool = False) -> int:
    """Shrink a read so it ends just after a newline (no copy to trim a partial line later).

    Where no line ends within `want`, a whole chunk, or a read that must make `progress` (the
    first of a call), extends to the end of the line instead; a max_bytes budget cut otherwise
    holds the partial line back.
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
    if want < CHUNK_BYTES and not progress:
        return want
    if probe < want:  # a line longer than the probe: an earlier one may still end in range
        fh.seek(offset)
        cut = fh.read(want - probe).rfind(b"\n")
        if cut >= 0:
            return cut + 1
    fh.seek(end)
    return want + len(fh.readline())


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
    return ReadResult(flows=flows, cursor=cursor, format=cursor.format, skipped=skipped)


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
    return tuple(SkippedLine(file, n, reason, line) for n, line, reason in reasons.iter_rows())
