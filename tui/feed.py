"""SnapshotFeed: the part of engine.pipeline.Pipeline the TUI uses, fed by hand.

Tests and screenshots publish snapshots through it; the live app gets a Pipeline, which
offers the same four members. `subscribe` callbacks may run on any thread.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.snapshot import Snapshot


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
