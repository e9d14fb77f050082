"""Batch runs over archives of dumps: expand paths, read in rotation order, carry history.

Shared by the `score`, `train`, `eval` and `sources` commands. Files are read one at a time
(memory stays near one file plus a few minutes of history); flows of the previous minutes are
handed to the detector as `history`, so a window that spans a rotation sees both files.
Each directory is one exporter's rotation: files are ordered by name within their directory,
and history never crosses from one directory to another.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from engine.core.dumpfiles import DEFAULT_MAX_RATIO, list_dumps
from engine.core.errors import UserError
from engine.core.sanitize import inert
from engine.core.schema import FLOW_SCHEMA, SCORED_SCHEMA, conform

# Twice the longest feature window (60 s, tumbling): a window that starts in the previous file
# is complete, with slack for router flows whose ts_first lags the rotation.
HISTORY = timedelta(seconds=120)
HISTORY_MAX_ROWS = 1_000_000  # as the live pipeline: a flood must not make history unbounded
# Text per chunk a batch command holds (parsed and scored) at a time: the live watcher's default
# batch ([watch] batch_max_bytes), ~200k flows of extended text. Every scoring call pays a
# fixed cost (history concat, feature windows, scope), so an ordinary dump must stay one
# chunk: at 8 MiB a 12 MB csv rotation became 3 calls and `score` lost a third of its rate.
BATCH_CHUNK_BYTES = 32 << 20


@dataclass(frozen=True)
class FileFlows:
    path: Path
    flows: pl.DataFrame  # FLOW_SCHEMA, this file only
    history: pl.DataFrame  # FLOW_SCHEMA, the minutes before this file's flows
    skipped: tuple[Any, ...]  # engine.ingest.SkippedLine, bad lines only (not headers)
    format: str | None
    problem: str | None = None  # not read to its end (unreadable, truncated, corrupt): why
    part: int = 0  # a big file comes in chunks: 0, 1, ... (history carried between them)
    last: bool = True  # the file's end: an empty item after its chunks (and problems)


def expand_paths(paths: Sequence[str | Path], *, glob: str = "*") -> list[Path]:
    """Files as given plus the dumps inside given directories (matching `glob`, not hidden),
    deduplicated, grouped by directory and sorted by name (rotation order for nfcapd names)."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in list_dumps(path, glob):
                found[child] = None
        elif path.is_file():
            found[path] = None
        else:
            raise UserError(f"{path}: no such file or directory")
    if not found:
        raise UserError(f"no dump files in {', '.join(str(p) for p in paths)}")
    return sorted(found, key=lambda p: (str(p.parent), p.name))


def iter_flows(
    paths: Sequence[Path],
    *,
    timezone: str = "local",
    max_ratio: float | None = DEFAULT_MAX_RATIO,
    chunk_bytes: int | None = None,
) -> Iterator[FileFlows]:
    """Each file in the given order, in chunks of about `chunk_bytes` of text (default
    BATCH_CHUNK_BYTES: a rotation of ordinary size is one chunk), each with the
    flows of the minutes before it as history, carried from chunk to chunk exactly as from
    file to file: memory follows the chunk size, not the file size."""
    # imported late: commands load only what they use
    from engine.ingest.reader import iter_dump

    empty = pl.DataFrame(schema=FLOW_SCHEMA)
    history, directory = empty, None
    for path in paths:
        if path.parent != directory:  # another exporter: its past is not this one's
            history, directory = empty, path.parent
        parts = iter_dump(path, final=True, timezone=timezone, max_ratio=max_ratio,
                          chunk_bytes=chunk_bytes or BATCH_CHUNK_BYTES)
        number = 0
        try:
            for result in parts:
                flows = result.flows
                yield FileFlows(path, flows, history, tuple(result.bad_lines), result.format,
                                result.problem, part=number, last=False)
                number += 1
                if flows.height:
                    newest = pl.lit(flows["ts_first"].max())
                    history = (
                        pl.concat([history, flows])
                        .filter(pl.col("ts_first") >= newest - HISTORY)
                        .tail(HISTORY_MAX_ROWS)
                    )
                del flows, result  # nothing of a chunk is kept past its turn but its history
            problem = None
        except OSError as exc:  # one unreadable file does not stop the others
            problem = f"cannot read: {exc.strerror or exc}"
        # the file's end: an empty item (no look-ahead, which would hold a second chunk)
        yield FileFlows(path, empty, history, (), None, problem, part=number, last=True)


def problem_line(item: FileFlows) -> str | None:
    """The warning for a file not read to its end (inert), or None."""
    if item.problem is None:
        return None
    return f"warning: {inert(item.path)}: {inert(item.problem)}"


class Prefetch(Iterator[Any]):
    """Runs an iterator in a background thread, up to `ahead` items in front of its consumer.

    Batch scoring uses it to read and parse the next dumps while the current one is scored:
    parsing (polars) and prediction (scikit-learn's trees) both release the GIL, so the two
    cores work at once. Items arrive in the producer's order, so output is what a plain loop
    gives; memory grows by at most `ahead` + 1 files (the queued ones and the one being read).
    An exception in the producer is raised to the consumer at the item where it happened.
    `close()` (or leaving a `with` block) stops the producer after the item it is on.
    """

    _END = object()

    def __init__(self, items: Iterable[Any], *, ahead: int = 1):
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._produce, args=(iter(items),), name="flowtriage-prefetch", daemon=True
        )
        self._thread.start()

    def _put(self, entry: tuple[Any, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((None, exc))
            return
        self._put((self._END, None))

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item, exc = self._queue.get()
        if exc is not None:
            self._done = True
            raise exc
        if item is self._END:
            self._done = True
            raise StopIteration
        return item

    def close(self) -> None:
        self._done = True
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def skipped_summary(item: FileFlows, *, show: int = 3) -> list[str]:
    """Lines for stderr about skipped input lines (first few shown, inert)."""
    if not item.skipped:
        return []
    lines = [f"  {len(item.skipped)} line(s) skipped in {inert(item.path.name)}"]
    for bad in item.skipped[:show]:
        lines.append(f"    line {bad.line}: {inert(bad.reason)}: {inert(bad.text[:80])}")
    return lines


def iter_scored(
    paths: Sequence[Path],
    detector: Any,
    *,
    timezone: str = "local",
    rules: Any = None,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
    prefetch: bool = True,
) -> Iterator[tuple[FileFlows, pl.DataFrame]]:
    """Score each file with the flows before it as history; yields SCORED_SCHEMA frames.

    With `prefetch` the next file is read while this one is scored (see Prefetch); the
    output is the same either way. `rules` (an engine.detect.rules.RuleSet) puts the names of
    the rules that fired into `reasons`.
    """
    flows = iter_flows(paths, timezone=timezone, max_ratio=max_ratio)
    if not prefetch:
        yield from score_files(flows, detector, rules=rules)
        return
    with Prefetch(flows) as files:
        yield from score_files(files, detector, rules=rules)


def score_files(
    files: Iterable[FileFlows], detector: Any, *, rules: Any = None
) -> Iterator[tuple[FileFlows, pl.DataFrame]]:
    """Score files as iter_flows reads them (perhaps through a Prefetch), in their order."""
    from engine.detect.scorer import score_or_skip

    extra = {} if rules is None else {"rules": rules}
    for item in files:
        if item.flows.height:
            scored, kept, unscorable = score_or_skip(
                detector, item.flows, history=item.history, **extra
            )
            scored = conform(scored, SCORED_SCHEMA)
            if unscorable:
                item = dataclasses.replace(item, skipped=item.skipped + unscorable)
        else:
            scored = pl.DataFrame(schema=SCORED_SCHEMA)
        yield item, scored
