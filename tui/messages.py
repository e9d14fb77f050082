"""Messages from worker threads to screens and the app: small, immutable payloads. Workers
post these and never touch a widget."""

from __future__ import annotations

from textual.message import Message

from engine.live.snapshot import Snapshot
from tui.view import TableView


class ViewReady(Message):
    """A worker finished filtering and sorting; `generation` says which request it answers."""

    def __init__(self, view: TableView, generation: int, new_above: int = 0) -> None:
        super().__init__()
        self.view = view
        self.generation = generation
        self.new_above = new_above  # rows above the cursor's row that arrived since it left the top


class Explained(Message):
    """The detector's explanation of one flow (or why there is none)."""

    def __init__(self, detail: dict | None, error: str | None = None) -> None:
        super().__init__()
        self.detail = detail
        self.error = error


# ---- from the label and model controllers' workers to the app (tui.labels, tui.models) -----


class Saved(Message):
    """A label store write, a retrain or a rollback finished (or failed); `text` is for the
    analyst's status line."""

    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error


class Reapplied(Message):
    """Labels were applied again: show the newest snapshot now, or (paused) `paused_view`, the
    snapshot on screen with the labels applied, so the analyst sees the label while paused."""

    def __init__(self, paused_view: Snapshot | None = None) -> None:
        super().__init__()
        self.paused_view = paused_view


class Activity(Message):
    """Progress of a background job (retraining) for the status line."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
