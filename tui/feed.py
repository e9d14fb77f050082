"""Feeds of snapshots: what the app needs from engine.live.pipeline.Pipeline (`latest`,
`subscribe`, `start`, `stop`, `error`).

SnapshotFeed is fed by hand (tests, screenshots); StartingPipeline wraps the real pipeline and
builds it off the UI thread. `subscribe` callbacks may run on any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from engine.live.snapshot import Snapshot


class SnapshotFeed:
    def __init__(self, first: Snapshot | None = None) -> None:
        self.latest: Snapshot | None = first
        self.error: BaseException | None = None  # a pipeline's fatal error, shown by the app
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


class StartingPipeline:
    """A feed that loads the model and builds the pipeline on its own thread, so the UI is on
    screen at once (loading a model can take seconds) and shows progress instead of a blank
    terminal. `build()` returns (pipeline, scorer); its exception becomes `error`."""

    def __init__(self, build: Callable[[], tuple[Any, Any]], status: str = "loading the model\u2026") -> None:
        self._build = build
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pipeline-start", daemon=True)
        self._error: BaseException | None = None
        self.pipeline: Any = None
        self.scorer: Any = None
        self.status = status

    @property
    def latest(self) -> Snapshot | None:
        return self.pipeline.latest if self.pipeline is not None else None

    @property
    def error(self) -> BaseException | None:
        return self._error or (getattr(self.pipeline, "error", None) if self.pipeline is not None else None)

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
