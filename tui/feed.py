"""Feeds of snapshots: the Feed contract the app is written against, and its two kinds.

SnapshotFeed is fed by hand (tests, screenshots); StartingPipeline wraps the real pipeline
(engine.live.pipeline.Pipeline) and builds it off the UI thread. `subscribe` callbacks may run
on any thread. The app asks a feed only what the Feed protocol says, so what a feed can do is
written here, not discovered with getattr.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Protocol

from engine.detect.scorer import Scorer
from engine.feedback.suppress import Feedback
from engine.live.pipeline import Pipeline
from engine.live.snapshot import Snapshot


class Feed(Protocol):
    """What FlowTriageApp needs from its source of snapshots."""

    @property
    def latest(self) -> Snapshot | None:
        """The newest snapshot published (None before the first)."""
        ...

    @property
    def error(self) -> BaseException | None:
        """The fatal error that stopped the feed, shown by the app."""
        ...

    @property
    def status(self) -> str:
        """What the feed is doing while there is nothing to show ("loading the model…")."""
        ...

    @property
    def pipeline(self) -> Pipeline | None:
        """The live pipeline once it runs (retraining reads its directory); None when fed by hand."""
        ...

    @property
    def scorer(self) -> Scorer | None:
        """The scorer that scores the flows shown (the drill-down explains with it)."""
        ...

    def subscribe(self, callback: Callable[[Snapshot], None]) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...

    def reapply(self, feedback: Feedback) -> None:
        """Apply the analysts' labels again to the flows shown and publish the result (any
        thread): after a label, an undo, or a model swap."""
        ...

    def swap_scorer(self, scorer: Scorer) -> None:
        """Score from the next batch on with `scorer` (a retrained or rolled-back model)."""
        ...


class SnapshotFeed:
    """Snapshots published by hand. Without a pipeline there is nothing to retrain; labels
    are applied again to the latest snapshot and published as the next version."""

    def __init__(self, first: Snapshot | None = None, scorer: Scorer | None = None) -> None:
        self.latest: Snapshot | None = first
        self.error: BaseException | None = None  # a pipeline's fatal error, shown by the app
        self.status = ""
        self.pipeline: Pipeline | None = None
        self.scorer: Scorer | None = scorer
        self._subscribers: list[Callable[[Snapshot], None]] = []

    def subscribe(self, callback: Callable[[Snapshot], None]) -> None:
        self._subscribers.append(callback)

    def publish(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
        for callback in list(self._subscribers):
            callback(snapshot)

    def start(self) -> None:
        """Nothing to run: snapshots arrive through publish()."""

    def stop(self) -> None:
        """Nothing to stop."""

    def reapply(self, feedback: Feedback) -> None:
        latest = self.latest
        if latest is not None:
            flows = feedback.apply(latest.flows)
            self.publish(dataclasses.replace(latest, version=latest.version + 1, flows=flows))

    def swap_scorer(self, scorer: Scorer) -> None:
        self.scorer = scorer


class StartingPipeline:
    """A feed that loads the model and builds the pipeline on its own thread, so the UI is on
    screen at once (loading a model can take seconds) and shows progress instead of a blank
    terminal. `build()` returns (pipeline, scorer); its exception becomes `error`."""

    def __init__(self, build: Callable[[], tuple[Pipeline, Scorer]],
                 status: str = "loading the model\u2026") -> None:
        self._build = build
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pipeline-start", daemon=True)
        self._error: BaseException | None = None
        self.pipeline: Pipeline | None = None
        self.scorer: Scorer | None = None
        self.status = status

    @property
    def latest(self) -> Snapshot | None:
        return self.pipeline.latest if self.pipeline is not None else None

    @property
    def error(self) -> BaseException | None:
        return self._error or (self.pipeline.error if self.pipeline is not None else None)

    def subscribe(self, callback: Callable[[Snapshot], None]) -> None:
        with self._lock:
            self._subscribers.append(callback)
            if self.pipeline is not None:
                self.pipeline.subscribe(callback)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            pipeline, scorer = self._build()
        except BaseException as exc:  # noqa: BLE001 - shown by the app, re-raised after it exits
            self._error = exc
            self.status = "could not start"
            return
        with self._lock:
            if self._stopped.is_set():
                return
            self.pipeline, self.scorer = pipeline, scorer
            for callback in self._subscribers:
                pipeline.subscribe(callback)
            pipeline.start()
        self.status = ""

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            pipeline = self.pipeline
        if pipeline is not None:
            pipeline.stop()

    def reapply(self, feedback: Feedback) -> None:
        # The pipeline holds the labels it applies; `feedback` is that same object.
        if self.pipeline is not None:
            self.pipeline.reapply_feedback()

    def swap_scorer(self, scorer: Scorer) -> None:
        if self.pipeline is not None:
            self.pipeline.set_scorer(scorer)
        self.scorer = scorer
