"""Messages from worker threads to screens: small, immutable payloads."""

from __future__ import annotations

from textual.message import Message

from tui.view import TableView


class ViewReady(Message):
    """A worker finished filtering and sorting; `generation` says which request it answers."""

    def __init__(self, view: TableView, generation: int) -> None:
        super().__init__()
        self.view = view
        self.generation = generation


class Explained(Message):
    """The detector's explanation of one flow (or why there is none)."""

    def __init__(self, detail: dict | None, error: str | None = None) -> None:
        super().__init__()
        self.detail = detail
        self.error = error
