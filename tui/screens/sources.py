"""SourcesScreen: per-source summaries; Enter shows that source's flows on the main screen."""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, Static

from engine.core.sanitize import sanitize
from engine.live.snapshot import Snapshot
from tui import keys
from tui.columns import SOURCE_COLUMNS
from tui.filter_bar import FilterBar
from tui.flow_table import FrameTable
from tui.nfdump import host_filter
from tui.screens.table_screen import TableScreen
from tui.view import SortKey


class SourcesScreen(TableScreen):
    COLUMNS = SOURCE_COLUMNS
    ID_COLUMN = "src_addr"
    DEFAULT_SORT = SortKey("score", descending=True)
    BINDINGS = keys.SOURCES

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield FrameTable(SOURCE_COLUMNS, "src_addr", empty_text="no sources yet", id="sources")
        yield FilterBar("find> ", "part of an address or a verdict", id="filter-bar")
        yield Static(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def frame_of(self, snapshot: Snapshot) -> pl.DataFrame:
        return snapshot.sources

    def compile_filter(self, text: str) -> pl.Expr:
        # Sources are aggregates, not flows: the filter is a plain substring, never a pattern.
        return pl.col("src_addr").str.contains(text, literal=True) | pl.col("top_verdict").str.contains(
            text, literal=True
        )

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_copy(self) -> None:
        row = self.table.cursor_row
        if row:
            self.app.copy_address(row.get("src_addr"))

    def on_frame_table_activated(self, event: FrameTable.Activated) -> None:
        address = (event.row or {}).get("src_addr")
        try:
            text = host_filter(address, direction="src")
        except ValueError:
            self.notify(f"Not an IP address: {sanitize(address)}", severity="warning", markup=False)
            return
        self.app.pop_screen()
        self.app.show_flows_matching(text)

    def view_changed(self) -> None:
        self.update_title()
        self.query_one("#status", Static).update(self.app.status_text())

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        super().show_snapshot(snapshot)
        self.update_title()

    def update_title(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" sources ", style="bold reverse")
        if self.app.paused:
            text.append(" PAUSED ", style="bold reverse")
        total = self.app.snapshot.sources.height if self.app.snapshot else 0
        text.append(f" {len(self.table.view):,}/{total:,} sources ")
        if self.filter_text:
            text.append(" find: ", style="dim")
            text.append(sanitize(self.filter_text), style="bold")
        text.append("  enter: flows of a source", style="dim")
        self.query_one("#title", Static).update(text)
