"""The live pipeline: Tailer batches -> scorer -> output + checkpoint -> immutable Snapshots.

Two threads, neither of them the caller's: a reader that polls the Tailer, and a scorer that
scores each batch with the window context of the flows before it (across files), appends it to
the sink, commits the checkpoints in the same step, and publishes a Snapshot. A bounded queue
between them, and a byte budget per batch, keep memory flat when a burst of big dumps lands.

Subscribers are called on the scorer thread with each new Snapshot; they must return quickly
(the TUI posts a message). `latest` is always the newest Snapshot.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from engine.config.settings import Config
from engine.core.sanitize import inert
from engine.core.schema import SCORED_SCHEMA
from engine.detect.features import HISTORY_SECONDS
from engine.detect.incidents import IncidentEvent, IncidentTracker
from engine.detect.rules import RuleSet
from engine.detect.scope import OUT_REASON
from engine.detect.scorer import Scorer, score_or_skip
from engine.ingest import Cursor, read_dump
from engine.live.sink import EventSink, JsonlSink
from engine.live.snapshot import Counters, Snapshot
from engine.live.source_window import SourceWindow
from engine.live.state import StateStore
from engine.live.tail import Batch, Tailer

STORAGE_RETRY_SECONDS = 2.0  # a full disk or a locked database: the held batch is retried
STORAGE_REPORT_EVERY = 30  # ... and said again every this many retries
HISTORY_MAX_ROWS = 1_000_000  # a flood must not turn window context into unbounded memory
RETAIN_MAX_ROWS = 250_000  # hard cap on the retained view, whatever retain_seconds allows
MESSAGES_KEPT = 200
RATE_WINDOW = 10.0
VIEW_SINK = "view"  # checkpoints of a watcher without an output file (the TUI)

# `why`: what the verdict came from, kept from scoring time for the drill-down (the TUI's
# pipeline only; engine.detect.explain)
RETAINED_SCHEMA = {**SCORED_SCHEMA, "flow_id": pl.UInt64(), "incident": pl.String(), "why": pl.String()}
# With analysts' feedback: the vector key a label needs, and the model's own output (so that
# applying labels again, after an undo, starts from what the model said).
FEEDBACK_SCHEMA = {
    **RETAINED_SCHEMA, "vector_key": pl.String(), "model_score": pl.Float64(),
    "model_verdict": pl.String(), "model_reasons": pl.String(),
}


class StorageStopped(Exception):
    """Stopped while a batch waited for its output or checkpoint to be written."""


def _storage_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return f"state database: {exc}"


def in_scope_count(scored: pl.DataFrame) -> int:
    """Flows of a scored batch that got a DNS verdict (engine.detect.scope)."""
    if "reasons" not in scored.columns:
        return scored.height
    return int((~scored["reasons"].fill_null("").str.starts_with(OUT_REASON)).sum())


class Pipeline:
    def __init__(
        self,
        directory: str | Path,
        config: Config,
        scorer: Scorer,
        *,
        sink: JsonlSink | None = None,
        incident_sink: EventSink | None = None,
        keep_all: bool = False,
        state_path: str | Path | None = None,
        from_start: bool = False,
        since: float | None = None,
        queue_batches: int = 2,
        feedback=None,
    ):
        self.directory = Path(directory)
        self.config = config
        self._from_start = from_start
        self._restored = 0
        self.keep_all = keep_all
        self._scorer = scorer
        self._sink = sink
        # engine.feedback.suppress.Feedback: analysts' labels applied to every batch and, on request, to
        # the retained flows. _lock orders that re-application with the scorer's own updates.
        self.feedback = feedback
        self._lock = threading.Lock()
        self.state = StateStore(state_path or config.state_db_path, sink.name if sink else VIEW_SINK)
        self._messages: collections.deque[str] = collections.deque(maxlen=MESSAGES_KEPT)
        self._said = 0
        if sink is not None:
            note = sink.open(self.state.out_length())
            if note:
                self._say(note)
        self.tailer = Tailer(
            directory, config.watch, self.state, timezone=config.ingest.timezone,
            from_start=from_start, since=since, max_ratio=config.ingest.max_decompressed_ratio,
        )
        self._queue: queue.Queue[Batch] = queue.Queue(maxsize=queue_batches)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._changed = threading.Condition()
        self._history_seconds = HISTORY_SECONDS
        self._rules = RuleSet.from_config(config.rules)
        self._history: pl.DataFrame | None = None
        self._retained = pl.DataFrame(schema=FEEDBACK_SCHEMA if feedback else RETAINED_SCHEMA)
        # every scored flow of the last retain_seconds, not only the retained (mostly flagged) ones
        self._sources = SourceWindow(config.watch.retain_seconds, threshold=scorer.threshold,
                                     max_pairs=config.watch.sources_max_pairs)
        # flagged flows grouped into incidents as they are scored (same grouping as `incidents`)
        self._incidents = IncidentTracker(scorer.threshold)
        self._incident_sink = incident_sink
        if incident_sink is not None:  # headless: continue the incidents the events file has
            length, tracker = self.state.incident_state()
            note = incident_sink.open(length)
            if note:
                self._say(note)
            if tracker and not from_start:
                self._incidents.restore(tracker)
        self._incident_table = self._incidents.table()
        self._stopped = False
        self._feedback_failed = False
        self._stop_lock = threading.Lock()
        self._rate: collections.deque[tuple[float, int]] = collections.deque()
        self._started_at = self._published_at = time.monotonic()
        self._flows = 0
        self._flagged = 0
        self._dns_flows = 0
        self._skipped = 0
        self._errors = 0
        self.error: BaseException | None = None
        self._latest = Snapshot(0, self._retained, self._sources.snapshot(), Counters(), tuple(self._messages))

    def _say(self, text: str) -> None:
        self._messages.append(inert(text))
        self._said += 1

    def messages_after(self, count: int) -> tuple[list[str], int]:
        """Messages said after the first `count` (as far as still kept), and the new count."""
        said, kept = self._said, list(self._messages)
        return kept[max(0, len(kept) - (said - count)):], said

    # -- public API ----------------------------------------------------------------------------

    @property
    def latest(self) -> Snapshot:
        return self._latest

    @property
    def history(self) -> pl.DataFrame | None:
        """The recent raw flows kept as window context (read-only by convention; None before any)."""
        return self._history

    @property
    def scorer(self) -> Scorer:
        return self._scorer

    def set_scorer(self, scorer: Scorer) -> None:
        """Swap the model; it scores from the next batch on (hot reload of a retrained model).
        Its threshold becomes the one cut for flagging, sources, incidents and analysts' labels."""
        with self._lock:
            self._scorer = scorer
            self._sources.threshold = scorer.threshold
            self._incidents.threshold = scorer.threshold
            if self.feedback is not None:
                self.feedback.set_threshold(scorer.threshold)

    def reapply_feedback(self) -> None:
        """After an analyst's label, undo or note: apply the labels again to the retained flows
        and publish, so identical rows already on screen change too. Any thread."""
        if self.feedback is None:
            return
        with self._lock:
            self._retained = self.feedback.apply(self._retained).sort(
                ["score", "ts_first"], descending=True
            )
            self._publish()

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        """Call `callback(snapshot)` on the pipeline thread for every new Snapshot."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def wait_for(self, predicate: Callable[[Snapshot], bool], timeout: float) -> Snapshot | None:
        """Block until a published Snapshot satisfies `predicate` (tests, benches, scripts)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._latest):
                left = deadline - time.monotonic()
                if left <= 0 or self.error is not None or (self._stop.is_set() and not self.running):
                    return None
                self._changed.wait(min(left, 0.1))
            return self._latest

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> Pipeline:
        self.tailer.start()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._read_loop,), name="flowtriage-read", daemon=True),
            threading.Thread(target=self._guard, args=(self._score_loop,), name="flowtriage-score", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the batch being scored; unscored read-ahead is read again next time.
        Idempotent: a second call does nothing."""
        with self._stop_lock:  # a concurrent second call waits for the first, then returns
            if self._stopped:
                return
            self._stopped = True
            self._stop.set()
            self.tailer.wake()
            for t in self._threads:
                t.join(timeout)
            self.tailer.stop()
            if self._sink is not None:
                self._sink.close()
            if self._incident_sink is not None:
                self._incident_sink.close()
            self.state.close()
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- threads -------------------------------------------------------------------------------

    def _guard(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except StorageStopped:
            pass  # stopped while waiting for storage: the held batch is read again next start
        except BaseException as exc:  # noqa: BLE001 - reported to the owner, who decides
            self.error = exc
            self._say(f"pipeline stopped: {type(exc).__name__}: {exc}")
            self._errors += 1
            self._stop.set()
            self._publish()

    def _read_loop(self) -> None:
        watch = self.config.watch
        failures = 0
        while not self._stop.is_set():
            try:
                batch = self.tailer.poll(watch.batch_max_bytes)
            except (OSError, sqlite3.Error) as exc:  # the state database cannot be written
                if failures % STORAGE_REPORT_EVERY == 0:
                    self._errors += 1
                    self._say(f"cannot record new dumps ({_storage_reason(exc)}); retrying "
                              f"every {STORAGE_RETRY_SECONDS:g} s")
                failures += 1
                self._stop.wait(STORAGE_RETRY_SECONDS)
                continue
            if failures:
                self._say("new dumps recorded again")
                failures = 0
            if not batch.empty:
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.2)  # backpressure: blocks while full
                        break
                    except queue.Full:
                        continue
            if not batch.more:
                self.tailer.wait(watch.poll_interval)

    def _score_loop(self) -> None:
        if not self._stopped:
            try:
                self._restore_view()
            except Exception as exc:  # noqa: BLE001 - the view stays empty; watching goes on
                self._say(f"the view was not restored after the restart: {type(exc).__name__}: {exc}")
        while not self._stop.is_set():
            try:
                batch = self._queue.get(timeout=0.2)
            except queue.Empty:
                # idle: refresh counters (files seen, lag) about once a second when they change
                if time.monotonic() - self._published_at >= 1.0 and self._counters() != self._latest.counters:
                    with self._lock:
                        self._publish()
                continue
            self._process(batch)

    def _restore_view(self) -> None:
        """The live view after a restart (no output file: the TUI): the dumps already read
        whose last change is within retain_seconds are read and scored again for the view
        only: nothing is written, counted or checkpointed, and a message says so. Without
        this, `watch DIR` again after an SSH drop shows an empty screen until the next
        rotation, because every dump is checkpointed."""
        if self._sink is not None or self._from_start:
            return
        cutoff = time.time() - self.config.watch.retain_seconds
        found: list[tuple[Path, int, int | None]] = []  # path, file uid, last line read (None: all)
        for record in self.state.records():
            if record.gone or not (record.done or record.cursor):
                continue
            path = Path(record.name)
            try:
                st = path.stat()
            except OSError:
                continue
            if st.st_mtime >= cutoff and (st.st_dev, st.st_ino) == (record.dev, record.ino):
                # a dump still being written: only the lines read before (the tailer reads on)
                last = None if record.done else Cursor.from_json(record.cursor or "{}").line
                found.append((path, record.uid, last))
        restored = 0
        for path, uid, last in sorted(found, key=lambda item: item[0].name):
            if self._stop.is_set():
                return
            try:
                flows = read_dump(path, final=True, timezone=self.config.ingest.timezone).flows
            except Exception as exc:  # noqa: BLE001 - a dump that cannot be read again is said
                self._say(f"{inert(path.name)}: not restored into the view: {exc}")
                continue
            if last is not None:
                flows = flows.filter(pl.col("line") <= last)
            if flows.height == 0:
                continue
            # the same flow ids as when the dump was first read: (file uid << 32) | line
            ids = (pl.lit(uid << 32, pl.UInt64) + flows["line"].cast(pl.UInt64)).alias("flow_id")
            scored = self._scorer.score(flows, history=self._history, rules=self._rules, detail=True)
            why = scored["why"] if "why" in scored.columns else pl.repeat(None, scored.height, dtype=pl.String, eager=True)
            scored = scored.select(list(SCORED_SCHEMA)).with_columns(
                pl.select(ids).to_series(), incident=pl.lit(None, pl.String), why=why)
            with self._lock:
                if self.feedback is not None:
                    scored = self.feedback.apply(scored, history=self._history)
                incident_ids, events = self._incidents.add(scored)
                scored = scored.with_columns(incident_ids)
                self._remember(flows)
                self._retain(scored, self._scorer.threshold)
                self._summarize(scored)
                self._incidents_changed(events)
            restored += flows.height
        self._restored = restored
        if restored:
            self._say(f"restored the view after a restart: {restored:,} flows of {len(found)} dump(s) "
                      f"already read in the last {self.config.watch.retain_seconds:g} s, scored again "
                      "for the view only (not counted, not written again)")
            with self._lock:
                self._publish()

    # -- one batch -------------------------------------------------------------------------------

    def _process(self, batch: Batch) -> None:
        scorer = self._scorer
        threshold = scorer.threshold  # the scorer's own cut: the same as `flowtriage score`
        scored = None
        if batch.flows.height:
            # rules: the names of the rules that fired go into `reasons` (the Scorer contract);
            # detail: the drill-down explains from what was computed now (a headless watcher
            # writes no drill-down, and skips the cost)
            detail = self._sink is None
            scored, kept, unscorable = score_or_skip(
                scorer, batch.flows, history=self._history, rules=self._rules, detail=detail
            )
            ids = batch.flow_ids
            if kept is not None:  # rows the scorer failed on: skipped, kept out of history
                ids = ids.gather(kept)
                batch = dataclasses.replace(
                    batch, flows=batch.flows[kept], flow_ids=ids,
                    skipped=batch.skipped + unscorable,
                    messages=batch.messages + tuple(
                        f"{s.file}: line {s.line} skipped: {s.reason}" for s in unscorable[:3]
                    ),
                )
            why = (scored["why"] if detail and "why" in scored.columns  # none when all out of scope
                   else pl.repeat(None, scored.height, dtype=pl.String, eager=True))
            scored = scored.select(list(SCORED_SCHEMA)).with_columns(
                flow_id=ids, incident=pl.lit(None, pl.String), why=why)
        with self._lock:
            self._process_scored(batch, scored if batch.flows.height else None, threshold)

    def _process_scored(self, batch: Batch, scored: pl.DataFrame | None, threshold: float) -> None:
        alerts = None
        events: list[IncidentEvent] = []
        if scored is not None:
            if self.feedback is not None:  # alerts and counters see the analysts' corrections
                try:
                    scored = self.feedback.apply(scored, history=self._history)
                except (sqlite3.Error, OSError) as exc:  # a damaged or vanished label store
                    if not self._feedback_failed:  # must not stop the watcher: said once
                        self._errors += 1
                        self._say(f"analysts' labels not applied: the label store failed ({exc})")
                    self._feedback_failed = True
            incident_ids, events = self._incidents.add(scored)
            scored = scored.with_columns(incident_ids)
            self._remember(batch.flows)
            flagged = scored["score"] >= threshold
            if self._sink is not None:
                out = scored.select(list(RETAINED_SCHEMA))  # the alert format stays as it was
                alerts = out if self.keep_all else out.filter(flagged)
            self._flows += scored.height
            self._dns_flows += int(in_scope_count(scored))
            self._flagged += int(flagged.sum())
            self._rate.append((time.monotonic(), scored.height))
            self._retain(scored, threshold)
            self._summarize(scored)
            self._incidents_changed(events)
        self._write_and_commit(batch, alerts, events)
        self._skipped += len(batch.skipped)
        for text in batch.messages:
            self._say(text)
        self._publish()

    def _write_and_commit(self, batch: Batch, alerts: pl.DataFrame | None,
                          events: list[IncidentEvent] | None = None) -> None:
        """Append the batch's alerts and commit its checkpoints with the new length, as one
        step. A full disk, a read-only or failing file system, a locked or broken database:
        the output is cut back to its committed length and the same step is retried until it
        succeeds (or the watcher stops, and the batch is read again at the next start), so
        no flow is lost or written twice whenever space comes back."""
        start = self._sink.length if self._sink is not None else None
        # headless: the batch's incident events go with it, and the open incidents are
        # committed with the checkpoints (a restart continues them, each event written once)
        events_sink = self._incident_sink
        events_start = events_sink.length if events_sink is not None else None
        records = [e.record() for e in events or ()]
        tracker = self._incidents.to_state() if events_sink is not None else ""
        failures = 0
        while True:
            try:
                length = start
                if self._sink is not None:
                    length = self._sink.append(alerts) if alerts is not None else self._sink.length
                incidents = None
                if events_sink is not None:
                    incidents = (events_sink.append_records(records), tracker)
                self.state.commit(list(batch.checkpoints), length, incidents)
                break
            except (OSError, sqlite3.Error) as exc:
                for sink, at in ((self._sink, start), (events_sink, events_start)):
                    if sink is not None and at is not None:
                        try:
                            sink.rewind(at)
                        except OSError:
                            pass  # cut back at the next start (sink.open), from the checkpoint
                if failures % STORAGE_REPORT_EVERY == 0:
                    self._errors += 1
                    self._say(f"cannot write output or checkpoints ({_storage_reason(exc)}); "
                              f"holding the batch and retrying every {STORAGE_RETRY_SECONDS:g} s: "
                              "nothing is lost or repeated")
                    self._publish()
                failures += 1
                if self._stop.wait(STORAGE_RETRY_SECONDS):
                    raise StorageStopped() from exc
        if failures:
            self._say("output and checkpoints written again")

    def _remember(self, flows: pl.DataFrame) -> None:
        """Keep the last few seconds of raw flows as window context for the next batch."""
        joined = flows if self._history is None else pl.concat([self._history, flows])
        if joined["ts_first"].max() is not None:
            newest = pl.col("ts_first").max()
            joined = joined.filter(pl.col("ts_first") >= newest - timedelta(seconds=self._history_seconds))
        self._history = joined.tail(HISTORY_MAX_ROWS)

    def _retain(self, scored: pl.DataFrame, threshold: float) -> None:
        """The retain_top most suspicious flows, plus every flow flagged in the last retain_seconds
        (of flow time), most suspicious first; one sort, no joins (this runs on every batch)."""
        watch = self.config.watch
        joined = pl.concat([self._retained, scored.select(self._retained.columns)]).sort(["score", "ts_first"], descending=True)
        newest = pl.col("ts_first").max()
        recent = (pl.col("score") >= threshold) & (
            pl.col("ts_first") >= newest - timedelta(seconds=watch.retain_seconds))
        self._retained = (
            joined.with_row_index("_rank")
            .filter((pl.col("_rank") < watch.retain_top) | recent)
            .drop("_rank")
            .head(RETAIN_MAX_ROWS)
        )

    def _incidents_changed(self, events: list[IncidentEvent]) -> None:
        """Keep the incidents of the retained window; the table is rebuilt only when a batch
        opened, grew or closed one (hundreds of rows at most, from Python objects)."""
        newest = self._retained["ts_first"].max()
        if isinstance(newest, datetime):
            self._incidents.forget(newest - timedelta(seconds=self.config.watch.retain_seconds))
        if events:
            self._incident_table = self._incidents.table()

    def _summarize(self, scored: pl.DataFrame) -> None:
        overflowed = self._sources.overflowed
        try:
            self._sources.add(scored)
        except Exception as exc:  # noqa: BLE001 - a summary bug must not stop the watcher
            self._say(f"per-source summary failed: {exc}")
        if self._sources.overflowed and not overflowed:
            self._say(
                f"per-source summary: more than {self._sources.max_pairs:,} distinct (source, peer/port) "
                "pairs in the window; peers and dst_ports are lower bounds until they age out, "
                "other columns stay exact")
        elif overflowed and not self._sources.overflowed:
            self._say("per-source summary: peers and dst_ports are exact again")

    def _counters(self) -> Counters:
        now = time.monotonic()
        while self._rate and self._rate[0][0] < now - RATE_WINDOW:
            self._rate.popleft()
        span = min(RATE_WINDOW, max(now - self._started_at, 1e-3))
        backlog = self.tailer.backlog_since
        version = self._scorer.version_ or type(self._scorer).__name__
        return Counters(
            files=self.tailer.files_seen,
            newest_file=self.tailer.newest_file,
            lag_seconds=max(0.0, time.time() - backlog) if backlog is not None else 0.0,
            flows=self._flows,
            dns_flows=self._dns_flows,
            flows_per_second=sum(n for _, n in self._rate) / span,
            flagged=self._flagged,
            skipped_lines=self._skipped,
            errors=self._errors + self.tailer.errors,
            model_version=str(version),
            restored_flows=self._restored,
        )

    def _publish(self) -> None:
        try:
            sources = self._sources.snapshot()  # cached until the next batch
        except Exception as exc:  # noqa: BLE001 - a summary bug must not stop the watcher
            self._say(f"per-source summary failed: {exc}")
            sources = pl.DataFrame()
        snap = Snapshot(
            self._latest.version + 1, self._retained, sources, self._counters(),
            tuple(self._messages), float(self._scorer.threshold), incidents=self._incident_table,
        )
        self._published_at = time.monotonic()
        with self._changed:
            self._latest = snap
            self._changed.notify_all()
        for callback in list(self._subscribers):
            try:
                callback(snap)
            except Exception as exc:  # noqa: BLE001 - one bad subscriber must not stop scoring
                self._say(f"snapshot subscriber failed: {exc}")
