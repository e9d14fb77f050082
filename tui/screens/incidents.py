"""IncidentsScreen: the main screen of `watch` and `demo`: attack episodes, most severe and
most recent first (engine.detect.incidents); Enter shows the incident's flows, Enter again a
flow's detail."""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from engine.core.sanitize import sanitize
from engine.live.snapshot import Snapshot
from tui import format as fmt
from tui import keys
from tui.columns import INCIDENT_COLUMNS
from tui.filter_bar import FilterBar
from tui.flow_table import FrameTable
from tui.screens.flows import FlowsScreen
from tui.screens.table_screen import TableScreen
from tui.view import SortKey

SEARCHED = ("class", "summary", "anchor", "attackers", "victims", "reflectors", "resolvers",
            "tunnel_endpoints", "incident")


class IncidentsScreen(TableScreen):
    COLUMNS = INCIDENT_COLUMNS
    ID_COLUMN = "incident"
    DEFAULT_SORT = SortKey("rank", descending=False)
    BINDINGS = keys.INCIDENTS

    def __init__(self) -> None:
        super().__init__()
        self.follow = True  # new incidents land at the top, in sight

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield FrameTable(INCIDENT_COLUMNS, "incident", empty_text="no incidents yet\u2026", id="incidents")
        yield Static(id="reason")
        yield FilterBar("find> ", "part of a class or an address", id="filter-bar")
        yield Static(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def frame_of(self, snapshot: Snapshot) -> pl.DataFrame:
        return snapshot.incidents

    def compile_filter(self, text: str) -> pl.Expr:
        # Incidents are aggregates: the filter is a plain substring, never a pattern.
        return pl.any_horizontal(pl.col(c).str.contains(text, literal=True) for c in SEARCHED)

    # ---- actions -----------------------------------------------------------------------

    def on_frame_table_activated(self, event: FrameTable.Activated) -> None:
        if event.row is not None and event.row.get("incident"):
            self.app.push_screen(IncidentFlowsScreen(event.row))

    def action_label_normal(self) -> None:
        self.app.labels.label_incident(self.table.cursor_row, "normal")

    def action_label_pick(self) -> None:
        self.app.labels.label_incident(self.table.cursor_row)

    def action_all_flows(self) -> None:
        self.app.push_screen(IncidentFlowsScreen(None))

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            self.table.move_cursor(0)
        self.view_changed()

    def on_frame_table_cursor_moved(self, event: FrameTable.CursorMoved) -> None:
        if self.follow and event.index > 0:  # moving away from the top ends follow mode
            self.follow = False
        if event.index == 0:
            self.new_above = 0  # the top is in sight: nothing is new above
        self.view_changed()

    # ---- lines around the table --------------------------------------------------------

    def view_changed(self) -> None:
        app = self.app
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(" flowtriage ", style="bold reverse")
        behind = app.flows_behind
        if app.paused:
            title.append(f" PAUSED +{behind:,} flows " if behind else " PAUSED ", style="bold reverse")
        else:
            title.append(" LIVE ", style="bold")
        if self.follow:
            title.append(" FOLLOW ", style="bold")
        incidents = app.snapshot.incidents if app.snapshot is not None else None
        total = incidents.height if incidents is not None else 0
        opened = int((incidents["state"] == "open").sum()) if incidents is not None and total else 0
        title.append(f" {len(self.table.view):,}/{total:,} incidents, {opened:,} open ")
        if self.filter_text:
            title.append(" find: ", style="dim")
            title.append(sanitize(self.filter_text), style="bold")
        title.append_text(self.title_marks())
        title.append(f"  {sanitize(app.subtitle)}", style="dim")
        empty = sanitize(app.feed_status) or "no incidents yet\u2026"
        if self.table.empty_text != empty:
            self.table.empty_text = empty
            self.table.refresh()
        self.query_one("#title", Static).update(title)
        self.query_one("#reason", Static).update(self._detail_line())
        self.query_one("#status", Static).update(app.status_text())

    def _detail_line(self) -> Text:
        """The incident under the cursor in a line: span, size, peak rate, id."""
        row = self.table.cursor_row
        text = Text(no_wrap=True, overflow="ellipsis")
        if not row:
            return text
        text.append("\u25b8 ", style="bold")
        text.append(f"{sanitize(row.get('class'))} {fmt.clock(row.get('first_seen'))}\u2013"
                    f"{fmt.clock(row.get('last_seen'))}: {fmt.compact(row.get('flows'))} flows, "
                    f"{fmt.compact(row.get('packets'))} pkt, {fmt.compact(row.get('bytes'))} B, "
                    f"peak {row.get('peak_rate') or 0:.1f} fl/s ")
        text.append(f"[{sanitize(row.get('state'))} {sanitize(row.get('incident'))}]", style="dim")
        return text

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        super().show_snapshot(snapshot)
        self.view_changed()


class IncidentFlowsScreen(FlowsScreen):
    """The flows table scoped to one incident (or, with None, every retained flow), pushed
    over the incidents screen: q/Esc go back to it."""

    BINDINGS = [Binding("q,escape,backspace", "back", "Back", id="back")]

    def __init__(self, incident: dict | None, filter_text: str = "") -> None:
        super().__init__()
        self.incident = incident
        self._initial_filter = filter_text
        if incident is not None:
            self.scope = pl.col("incident") == str(incident.get("incident"))

    def on_mount(self) -> None:
        super().on_mount()
        if self._initial_filter:
            self.apply_filter(self._initial_filter)

    def action_back(self) -> None:
        self.app.pop_screen()
