"""HelpScreen: every key, what it does, and the id that remaps it in config.toml [keys]."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.keys import CONTEXTS, HELP


class HelpScreen(Screen):
    BINDINGS = HELP

    def compose(self) -> ComposeResult:
        title = Text(" keys ", style="bold reverse")
        title.append(" remap any key in config.toml: [keys] <id> = \"<key>\"", style="dim")
        yield Static(title, id="title")
        with VerticalScroll(id="help"):
            yield Static(self._table())
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def _table(self) -> Table:
        keymap = self.app._keymap  # the keys in force, after [keys] remapping
        table = Table(box=None, pad_edge=False, expand=True, show_header=True, header_style="bold")
        table.add_column("key", no_wrap=True)
        table.add_column("action", ratio=1)
        table.add_column("id", style="dim", no_wrap=True)
        self.rows: list[tuple[str, str, str, str]] = []  # context, keys, action, id
        for context, bindings in CONTEXTS:
            table.add_row(Text(context, style="bold underline"), Text(""), Text(""))
            for binding in bindings:
                keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
                shown = ", ".join(self.app.get_key_display(Binding(k, "")) for k in keys.split(","))
                action = binding.tooltip or binding.description or binding.action
                self.rows.append((context, shown, action, binding.id or ""))
                table.add_row(Text(shown), Text(action), Text(binding.id or ""))
        table.add_row(Text("ctrl+p"), Text("Command palette: every action by name"), Text(""))
        return table

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll(self, direction: str) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.scroll_down(animate=False) if direction == "down" else scroll.scroll_up(animate=False)
