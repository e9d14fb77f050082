"""FlowsScreen: the main screen, a live table of suspicious flows."""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, Static

from engine.core.sanitize import sanitize
from engine.detect.rules import compile_filter
from engine.live.snapshot import Snapshot
from tui import format as fmt
from tui import keys
from tui.columns import FLOW_COLUMNS
from tui.feedback import FeedbackActions
from tui.filter_bar import FilterBar
from tui.flow_table import FrameTable
from tui.screens.table_screen import TableScreen
from tui.view import SortKey


def compile_flow_filter(text: str) -> pl.Expr:
    return compile_filter(text)


class FlowsScreen(FeedbackActions, TableScreen):
    COLUMNS = FLOW_COLUMNS
    ID_COLUMN = "flow_id"
    DEFAULT_SORT = SortKey("score", descending=True)
    BINDINGS = keys.FLOWS
    incident: dict | None = None  # the incident whose flows these are (IncidentFlowsScreen)

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield FrameTable(FLOW_COLUMNS, "flow_id", empty_text="waiting for flows\u2026", id="flows")
        yield Static(id="reason")
        yield FilterBar("filter> ", "nfdump filter, e.g. proto udp and src port 53", id="filter-bar")
        yield Static(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def frame_of(self, snapshot: Snapshot) -> pl.DataFrame:
        return snapshot.flows

    def compile_filter(self, text: str) -> pl.Expr:
        return compile_flow_filter(text)

    def threshold(self, snapshot: Snapshot) -> float | None:
        return snapshot.threshold

    def show_flows_of(self, filter_text: str) -> None:
        self.apply_filter(filter_text)

    # ---- actions -----------------------------------------------------------------------

    def feedback_row(self) -> dict | None:
        return self.table.cursor_row

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            self.table.move_cursor(0)
        self.update_title()

    def action_copy(self, column: str) -> None:
        row = self.table.cursor_row
        if row:
            self.app.copy_address(row.get(column))

    def on_frame_table_activated(self, event: FrameTable.Activated) -> None:
        if event.row is not None:
            self.app.show_flow(event.row)

    def on_frame_table_cursor_moved(self, event: FrameTable.CursorMoved) -> None:
        # Moving away from the top by hand ends follow mode, as a pager's tail mode does.
        if self.follow and event.index > 0:
            self.follow = False
        if event.index == 0:
            self.new_above = 0  # the top is in sight: nothing is new above
        self.update_title()
        self.update_reason()

    # ---- lines around the table --------------------------------------------------------

    def view_changed(self) -> None:
        self.update_title()
        self.update_reason()
        self.update_status()

    def update_reason(self) -> None:
        row = self.table.cursor_row
        text = Text(no_wrap=True, overflow="ellipsis")
        if row:
            text.append("\u25b8 ", style="bold")
            text.append(sanitize(row.get("reasons")) or "(no reason given)")
            text.append(f"  [{fmt.stamp(row.get('ts_first'))} {fmt.span(row.get('duration'))}]", style="dim")
        self.query_one("#reason", Static).update(text)

    def update_title(self) -> None:
        app = self.app
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" flowtriage ", style="bold reverse")
        if app.paused:
            behind = app.flows_behind
            text.append(f" PAUSED +{behind:,} flows " if behind else " PAUSED ", style="bold reverse")
        else:
            text.append(" LIVE ", style="bold")
        if self.follow:
            text.append(" FOLLOW ", style="bold")
        shown, total = len(self.table.view), (app.snapshot.flows.height if app.snapshot else 0)
        incident = self.incident
        if incident is not None:
            # shown/all: the view holds the incident's retained flows, the incident counts all
            text.append(f" {shown:,}/{int(incident.get('flows') or 0):,} flows of ")
            text.append(f"{sanitize(incident.get('class'))}: {sanitize(incident.get('summary'))} ", style="bold")
        else:
            text.append(f" {shown:,}/{total:,} flows ")
        if self.filter_text:
            text.append(" filter: ", style="dim")
            text.append(sanitize(self.filter_text), style="bold")
        text.append_text(self.title_marks())
        text.append(f"  {sanitize(app.subtitle)}", style="dim")
        empty = sanitize(app.feed_status) or "waiting for flows\u2026"
        if self.table.empty_text != empty:
            self.table.empty_text = empty
            self.table.refresh()
        self.query_one("#title", Static).update(text)

    def update_status(self) -> None:
        self.query_one("#status", Static).update(self.app.status_text())

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        super().show_snapshot(snapshot)
        self.update_title()
        self.update_status()
