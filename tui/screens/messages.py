"""MessagesScreen: the pipeline's recent messages (skipped lines with file:line and reason,
read errors), newest last, as inert text."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.core.sanitize import sanitize
from tui import keys


class MessagesScreen(Screen):
    BINDINGS = keys.MESSAGES

    def __init__(self, messages: tuple[str, ...], error: str | None = None) -> None:
        super().__init__()
        self.messages = messages
        self.error = error

    def compose(self) -> ComposeResult:
        title = Text(" messages ", style="bold reverse")
        title.append(f" {len(self.messages)} recent: skipped lines, read errors", style="dim")
        yield Static(title, id="title")
        with VerticalScroll(id="help"):
            text = Text()
            if self.error:
                text.append(f"pipeline stopped: {sanitize(self.error)}\n", style="bold red")
            for message in self.messages:
                text.append(sanitize(message) + "\n")
            if not self.messages and not self.error:
                text.append("no messages", style="dim")
            text.rstrip()
            yield Static(text, id="messages")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.focus()
        scroll.scroll_end(animate=False)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll(self, direction: str) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.scroll_down(animate=False) if direction == "down" else scroll.scroll_up(animate=False)
