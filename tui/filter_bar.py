"""FilterBar: a one-line input that stays open on an error and points at where it is."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static

from engine.core.sanitize import sanitize
from tui import keys


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar { height: auto; display: none; background: $panel; }
    FilterBar.-open { display: block; }
    FilterBar Horizontal { height: 1; }
    FilterBar Label { width: auto; color: $accent; text-style: bold; }
    FilterBar Input { width: 1fr; }
    FilterBar .filter-error { height: auto; color: $error; display: none; }
    FilterBar .filter-error.-shown { display: block; }
    """
    BINDINGS = keys.FILTER_BAR

    class Submitted(Message):
        def __init__(self, bar: FilterBar, text: str) -> None:
            super().__init__()
            self.bar = bar
            self.text = text

    class Cancelled(Message):
        def __init__(self, bar: FilterBar) -> None:
            super().__init__()
            self.bar = bar

    def __init__(self, prompt: str, placeholder: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.prompt = prompt
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(Text(self.prompt))
            yield Input(placeholder=self.placeholder, compact=True, select_on_focus=False)
        yield Static(classes="filter-error")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self, text: str) -> None:
        self.add_class("-open")
        self.clear_error()
        self.input.value = text
        self.input.cursor_position = len(text)
        self.input.focus()

    def close(self) -> None:
        self.remove_class("-open")
        self.clear_error()

    def clear_error(self) -> None:
        error = self.query_one(".filter-error", Static)
        error.update("")
        error.remove_class("-shown")

    def show_error(self, position: int | None, message: str) -> None:
        """A caret under `position` (0-based, in the filter text) and the message below it."""
        error = self.query_one(".filter-error", Static)
        self.input.cursor_position = max(0, position or 0)
        text = Text()
        if position is not None:
            column = len(self.prompt) + max(0, position) - int(self.input.scroll_offset.x)
            text.append(" " * max(0, column) + "^\n", style="bold")
        text.append(sanitize(message))
        error.update(text)
        error.add_class("-shown")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(self, event.value))

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled(self))
