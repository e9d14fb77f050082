"""Backfill: score an archive into Parquet partitioned by exporter and day, on any engine.

One plan, thin engines. Everything that decides a verdict lives here and runs unchanged on the
driver, in a Dask worker or in a Spark Python worker; an engine (engine.batch.engines for
local and Dask, engine.batch.spark for Spark) only moves bytes, batches tasks and ships the
model. The stages:

1. scan: each dump is parsed once (`scan_bytes`: bytes -> flows, as `flowtriage parse` reads
   them) into a staged Parquet copy, and gives a `FileStat` row: rows, oldest and newest
   `ts_first`, skipped lines, or the error that stopped it. The driver keeps the stats table
   (OUT/_backfill/scan/), so a resumed run does not parse again.
2. route (driver, `route_history`): per exporter in rotation order, which earlier files each
   file takes history rows from and from which `ts_first` on. This is exactly the history that
   engine.batch.plan.iter_flows carries in one process (rows of earlier files that survive
   every `newest - HISTORY` cut since), computed from the (oldest, newest) table alone, so a
   task gets those rows and no others wherever it runs.
3. score: each (exporter, day) partition is one unit: every file whose flows touch that day is
   scored (`score_file`) with its own flows and its routed history, and the rows whose
   `ts_first` falls on that day are the partition (a file spanning midnight is scored for
   both days and split). OUT/exporter=E/day=YYYY-MM-DD/ holds the SCORED_SCHEMA columns
   (those of `score --all`, `file` and `line` included); a marker in OUT/_backfill/done says
   the partition is complete, and a resumed run skips it. A partition without its marker is
   written again whole, so a killed run resumed gives the same output as an unbroken one.

A file that cannot be read or parsed is reported (`FileStat.error`) and counts as empty; the
rest of the archive is finished. Analysts' label corrections are not applied (model verdicts,
as `eval` judges them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from engine.batch.plan import HISTORY
from engine.core.dumpfiles import decompress, is_dump
from engine.core.errors import UserError
from engine.core.schema import FLOW_SCHEMA, SCORED_SCHEMA, conform

META_DIR = "_backfill"
SCAN_DIR = "scan"
DONE_DIR = "done"
STAGING_DIR = "staging"
HISTORY_MS = int(HISTORY / timedelta(milliseconds=1))
# Exporter names become partition directory names: keep them plain.
_EXPORTER_OK = re.compile(r"[^A-Za-z0-9._-]+")
_SKIPPED_SHOWN = 3


# -- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputFile:
    path: str  # as provenance (`file`) names it: the path given, or the URI the engine lists
    exporter: str
    size: int
    mtime: int  # ns for local files, ms for what a cluster filesystem lists; only compared


def exporter_name(directory: str) -> str:
    name = _EXPORTER_OK.sub("_", directory.rstrip("/").rsplit("/", 1)[-1]) or "_"
    return name


def list_local(inputs: Sequence[str | Path], *, glob: str = "*") -> list[InputFile]:
    """Dumps under local `inputs`, one exporter per directory that holds dumps (its name),
    files in rotation (name) order. A directory holding only directories is an archive: each
    directory below it that holds dumps is an exporter."""
    found: dict[str, InputFile] = {}
    for raw in inputs:
        path = Path(raw)
        if path.is_file():
            _add(found, path, exporter_name(str(path.parent.resolve())))
            continue
        if not path.is_dir():
            raise UserError(f"{path}: no such file or directory")
        for root, dirs, files in os.walk(path):
            dirs.sort()
            dumps = [n for n in files if is_dump(n, glob) and (Path(root) / n).is_file()]
            for name in dumps:
                _add(found, Path(root) / name, exporter_name(str(Path(root).resolve())))
    if not found:
        raise UserError(f"no dump files in {', '.join(str(p) for p in inputs)}")
    return order_inputs(found.values())


def _add(found: dict[str, InputFile], path: Path, exporter: str) -> None:
    st = path.stat()
    found[str(path)] = InputFile(str(path), exporter, st.st_size, st.st_mtime_ns)


def order_inputs(files: Iterable[InputFile]) -> list[InputFile]:
    """Rotation order per exporter; two directories with one name are refused (their
    partitions would mix)."""
    dirs: dict[str, str] = {}
    for f in files:
        parent = f.path.rsplit("/", 1)[0] if "/" in f.path else "."
        seen = dirs.setdefault(f.exporter, parent)
        if os.path.abspath(seen) != os.path.abspath(parent):
            raise UserError(
                f"two exporter directories are both named {f.exporter!r} ({seen} and {parent}); "
                "partitions are named by directory, so give them distinct names"
            )
    return sorted(files, key=lambda f: (f.exporter, f.path.rsplit("/", 1)[-1]))


def file_key(path: str) -> str:
    """A stable name for a file's staged copy and stats (the same on every run)."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:24]


# -- scan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStat:
    key: str
    path: str
    exporter: str
    size: int
    mtime: int
    rows: int = 0
    oldest: int | None = None  # ts_first, ms since the epoch of the naive wall clock
    newest: int | None = None
    format: str | None = None
    skipped: int = 0
    skipped_head: tuple[tuple[int, str, str], ...] = ()  # (line, reason, text), inert later
    error: str | None = None
    staged: str | None = None  # where the staged flows are (engine-specific location)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FileStat:
        raw = json.loads(text)
        raw["skipped_head"] = tuple(tuple(x) for x in raw.get("skipped_head") or ())
        return cls(**raw)

    def days(self) -> list[str]:
        """The days this file's flows touch (every day from its oldest to its newest)."""
        if not self.rows or self.oldest is None or self.newest is None:
            return []
        first, last = _day_of(self.oldest), _day_of(self.newest)
        return [
            (first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)
        ]


def _day_of(ms: int) -> date:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).date()


def scan_bytes(data: bytes, *, source: InputFile, timezone: str) -> tuple[pl.DataFrame, FileStat]:
    """Parse one dump's bytes (plain or compressed, recognised by content) into FLOW_SCHEMA
    flows, in line order, and its stats. Never raises for bad content: an error is a stat."""
    from engine.ingest import parse_bytes

    try:
        result = parse_bytes(decompress(data), file=source.path, final=True, timezone=timezone)
    except Exception as exc:  # a dump that breaks the parser must not stop the archive
        return pl.DataFrame(schema=FLOW_SCHEMA), failed_stat(source, exc)
    flows = conform(result.flows)
    bad = tuple(result.bad_lines)
    epoch = flows["ts_first"].dt.epoch("ms") if flows.height else None
    return flows, FileStat(
        key=file_key(source.path), path=source.path, exporter=source.exporter,
        size=source.size, mtime=source.mtime,
        rows=flows.height,
        oldest=int(epoch.min()) if epoch is not None else None,  # type: ignore[arg-type]
        newest=int(epoch.max()) if epoch is not None else None,  # type: ignore[arg-type]
        format=result.format,
        skipped=len(bad),
        skipped_head=tuple((int(b.line), str(b.reason), str(b.text)[:80])
                           for b in bad[:_SKIPPED_SHOWN]),
    )


def failed_stat(source: InputFile, exc: BaseException) -> FileStat:
    return FileStat(key=file_key(source.path), path=source.path, exporter=source.exporter,
                    size=source.size, mtime=source.mtime, error=_error_text(exc))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


# -- route -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    source: str  # key of an earlier file of the same exporter
    since: int  # its rows with ts_first >= since (ms) are history


def route_history(stats: Sequence[FileStat]) -> dict[str, tuple[Route, ...]]:
    """For each file (stats in rotation order, exporters contiguous), the history it gets.

    iter_flows keeps, after each non-empty file, the rows of it and of the history before it
    whose ts_first >= that file's newest - HISTORY. A row of file j therefore reaches file i
    iff it passes every cut from j to i-1: ts_first >= max(newest of those) - HISTORY. A file
    drops out once that bound passes its own newest row, so the live set stays a few files.
    """
    routes: dict[str, tuple[Route, ...]] = {}
    live: list[tuple[FileStat, int]] = []  # (file, since) in rotation order
    exporter = None
    for stat in stats:
        if stat.exporter != exporter:
            live, exporter = [], stat.exporter
        routes[stat.key] = tuple(Route(s.key, since) for s, since in live)
        if stat.rows and stat.newest is not None:
            cut = stat.newest - HISTORY_MS
            live = [(s, max(since, cut)) for s, since in [*live, (stat, cut)]]
            live = [(s, since) for s, since in live if s.newest is not None and s.newest >= since]
    return routes


# -- score -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShip:
    """What a worker needs to load the model itself: its bytes and the sidecar's sha256 (the
    same checks as engine.models.store.load_model), never a pickled Detector."""

    data: bytes
    sha256: str
    name: str
    threshold: float | None = None  # [model] threshold, which overrides the model's own


@dataclass(frozen=True)
class TaskContext:
    model: ModelShip
    rules: tuple[Any, ...]  # engine.config.settings.RuleConfig (plain data)
    timezone: str  # resolved on the driver: a worker's "local" may be another zone


_DETECTORS: dict[tuple[str, float | None], Any] = {}
_RULESETS: dict[tuple[Any, ...], Any] = {}


def worker_detector(model: ModelShip) -> Any:
    """The model, loaded once per worker process from its shipped bytes."""
    key = (model.sha256, model.threshold)
    if key not in _DETECTORS:
        from engine.models.store import load_model_bytes

        detector = load_model_bytes(model.data, model.sha256, where=model.name)
        if model.threshold is not None:  # as engine.models.registry.load_detector does
            detector.threshold = model.threshold
        _DETECTORS[key] = detector
    return _DETECTORS[key]


def worker_rules(rules: tuple[Any, ...]) -> Any:
    if rules not in _RULESETS:
        from engine.detect.rules import RuleSet

        _RULESETS[rules] = RuleSet.from_config(rules)
    return _RULESETS[rules]


def score_file(flows: pl.DataFrame, history: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    """One file's flows scored with its history, as iter_scored scores them; plus `day`."""
    if flows.height:
        detector = worker_detector(ctx.model)
        scored = conform(
            detector.score(flows, history=history, rules=worker_rules(ctx.rules)), SCORED_SCHEMA
        )
    else:
        scored = pl.DataFrame(schema=SCORED_SCHEMA)
    return scored.with_columns(day=pl.col("ts_first").dt.strftime("%Y-%m-%d"))


def history_rows(parts: Iterable[tuple[pl.DataFrame, int]]) -> pl.DataFrame:
    """Routed history: each source's rows from its `since` on, sources in rotation order."""
    frames = [f.filter(pl.col("ts_first").dt.epoch("ms") >= since) for f, since in parts]
    return pl.concat(frames) if frames else pl.DataFrame(schema=FLOW_SCHEMA)


def open_partitions(stats: Sequence[FileStat]) -> set[tuple[str, str]]:
    """Partitions a failed file may change: they are written but not marked done, so the next
    run (once the file reads) writes them again with its flows and its history.

    A failed file's times are unknown. Its flows lie after its readable predecessor's newest
    and (allowing router lag) before its successor's newest; as history they reach its
    successor and the files after it while each one before ends within HISTORY of that.
    Every day those files touch is held.
    """
    held: set[tuple[str, str]] = set()
    for i, stat in enumerate(stats):
        if not stat.error:
            continue
        same = [s for s in stats[i + 1:] if s.exporter == stat.exporter]
        before = next((s for s in reversed(stats[:i])
                       if s.exporter == stat.exporter and s.newest is not None), None)
        reached = [s for s in same if s.rows]
        affected: list[FileStat] = []
        if reached:
            bound = (reached[0].newest or 0) + HISTORY_MS
            affected.append(reached[0])
            for prev, nxt in zip(reached, reached[1:], strict=False):
                if prev.newest is None or prev.newest > bound:
                    break
                affected.append(nxt)
        days = {(stat.exporter, d) for s in affected for d in s.days()}
        if before is not None and before.newest is not None:
            days.add((stat.exporter, _day_of(before.newest).isoformat()))
        if days:  # fill the gap between the neighbours' days too
            ordered = sorted(date.fromisoformat(d) for _e, d in days)
            for n in range((ordered[-1] - ordered[0]).days + 1):
                held.add((stat.exporter, (ordered[0] + timedelta(days=n)).isoformat()))
    return held


# -- units (partitions) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    exporter: str
    day: str
    files: tuple[FileStat, ...]  # the files touching this day, rotation order
    routes: tuple[tuple[Route, ...], ...]  # per file

    @property
    def name(self) -> str:
        return f"exporter={self.exporter}/day={self.day}"


def plan_units(stats: Sequence[FileStat]) -> list[Unit]:
    routes = route_history(stats)
    by_part: dict[tuple[str, str], list[FileStat]] = {}
    for stat in stats:
        for day in stat.days():
            by_part.setdefault((stat.exporter, day), []).append(stat)
    return [
        Unit(exp, day, tuple(files), tuple(routes[f.key] for f in files))
        for (exp, day), files in sorted(by_part.items())
    ]


def sources_of(units: Iterable[Unit]) -> set[str]:
    """Keys of every file a unit reads: its own files and their history sources."""
    keys: set[str] = set()
    for unit in units:
        keys.update(f.key for f in unit.files)
        keys.update(r.source for routes in unit.routes for r in routes)
    return keys


# -- the control files (OUT/_backfill), on a filesystem the engine names ----------------------


class Store:
    """The driver's view of OUT for markers and the scan log: local paths here; the Spark
    engine gives one that goes through Hadoop's FileSystem (hdfs://, s3a://)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def list_texts(self, directory: str) -> list[str]:
        """The contents of the files in `directory`, by name (none if it is missing)."""
        if not os.path.isdir(directory):
            return []
        return [
            Path(directory, n).read_text(encoding="utf-8")
            for n in sorted(os.listdir(directory)) if not n.startswith(".")
        ]

    def log_scan(self, lines: Sequence[str]) -> None:
        """Add stats to the scan log: appended and synced here, one line at a time."""
        path = Path(self.path(META_DIR, SCAN_DIR, "local.jsonl"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
            fh.flush()
            os.fsync(fh.fileno())

    def touch(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("", encoding="utf-8")

    def delete(self, path: str) -> None:
        import shutil

        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)


def load_scan(store: Store) -> dict[str, FileStat]:
    """The stats of earlier runs by path (a line torn by a kill is ignored)."""
    text = "".join(store.list_texts(store.path(META_DIR, SCAN_DIR)))
    stats: dict[str, FileStat] = {}
    for line in text.splitlines():
        try:
            stat = FileStat.from_json(line)
        except (ValueError, TypeError, KeyError):
            continue
        stats[stat.path] = stat
    return stats


def done_marker(store: Store, unit: Unit) -> str:
    return store.path(META_DIR, DONE_DIR, f"exporter={unit.exporter}", f"day={unit.day}")


# -- the driver --------------------------------------------------------------------------------


@dataclass
class Summary:
    files: int = 0
    scanned: int = 0
    flows: int = 0
    partitions: int = 0
    written: int = 0
    skipped_partitions: int = 0
    rows_written: int = 0
    failed: list[FileStat] = field(default_factory=list)
    held: list[tuple[str, str]] = field(default_factory=list)  # written, not marked done
    with_skipped_lines: list[FileStat] = field(default_factory=list)


Report = Callable[[str, Any], None]  # (event, detail): "scanned" FileStat, "unit" (Unit, rows)


def run_backfill(
    files: Sequence[InputFile], engine: Any, ctx: TaskContext, *, report: Report | None = None
) -> Summary:
    """The driver: scan what is not scanned, plan, score the partitions not done.

    `engine` is an engine.batch.engines / engine.batch.spark adapter: `store`, `scan(files,
    ctx)` yielding lists of FileStats as they finish, `staged_ok(stat)`, `score(units, stats, ctx)`
    yielding (unit, rows) as partitions complete, and `drop_staging()`.
    """
    report = report or (lambda _event, _detail: None)
    store: Store = engine.store
    summary = Summary(files=len(files))
    known = load_scan(store)
    stats: dict[str, FileStat] = {}
    todo = []
    for f in files:
        old = known.get(f.path)
        if (
            old is not None
            and old.error is None  # a file that failed is tried again
            and (old.size, old.mtime, old.exporter) == (f.size, f.mtime, f.exporter)
        ):
            stats[f.path] = old
        else:
            todo.append(f)

    def scan(batch: Sequence[InputFile]) -> None:
        for done in engine.scan(batch, ctx):  # lists of stats, as the engine finishes them
            store.log_scan([stat.to_json() for stat in done])
            for stat in done:
                stats[stat.path] = stat
                summary.scanned += 1
                report("scanned", stat)

    if todo:
        scan(todo)
    ordered = [stats[f.path] for f in files]
    units = plan_units(ordered)
    pending = [u for u in units if not store.exists(done_marker(store, u))]
    summary.partitions = len(units)
    summary.skipped_partitions = len(units) - len(pending)
    # A staged copy may be gone (cleaned after an earlier complete run, or never written):
    # scan again whatever a pending partition reads.
    restage = [
        f for f in files
        if (s := stats[f.path]).key in sources_of(pending) and s.rows and not engine.staged_ok(s)
    ]
    if restage:
        scan(restage)
        ordered = [stats[f.path] for f in files]
        units = plan_units(ordered)
        pending = [u for u in units if not store.exists(done_marker(store, u))]
    report("planned", (len(units), len(pending)))
    held = open_partitions(ordered)
    for unit, rows in engine.score(pending, ordered, ctx):
        if (unit.exporter, unit.day) not in held:
            store.touch(done_marker(store, unit))
        summary.written += 1
        summary.rows_written += rows
        report("unit", (unit, rows))
    summary.flows = sum(s.rows for s in ordered)
    summary.failed = [s for s in ordered if s.error]
    summary.held = sorted(held)
    summary.with_skipped_lines = [s for s in ordered if s.skipped]
    if not summary.failed:
        # Nothing left to resume: the staged copies would only double the archive's size.
        engine.drop_staging()
    return summary


def read_output(out: str | Path) -> pl.DataFrame:
    """A backfill's rows as SCORED_SCHEMA plus exporter and day, in (exporter, file, line)
    order (Spark writes microsecond timestamps: cast back to the canonical milliseconds)."""
    root = Path(out)
    parts = sorted(root.glob("exporter=*/day=*/*.parquet"))
    frames = []
    for part in parts:
        exporter = part.parent.parent.name.split("=", 1)[1]
        day = part.parent.name.split("=", 1)[1]
        frame = pl.read_parquet(part, hive_partitioning=False)
        frames.append(
            conform(frame, SCORED_SCHEMA).with_columns(
                exporter=pl.lit(exporter), day=pl.lit(day)
            )
        )
    schema = {**SCORED_SCHEMA, "exporter": pl.String(), "day": pl.String()}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).sort(["exporter", "file", "line"], maintain_order=True)
