"""TableScreen: what the flows and sources screens share: a FrameTable fed from snapshots,
sorted and filtered by polars in a worker, with keys to sort by any column both ways."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from rich.text import Text
from textual import on, work
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from engine.filters.language import FilterError
from engine.live.snapshot import Snapshot
from tui.columns import Column
from tui.filter_bar import FilterBar
from tui.flow_table import FrameTable
from tui.messages import ViewReady
from tui.view import SortKey, build_view, empty_view

if TYPE_CHECKING:
    from tui.app import FlowTriageApp



class TableScreen(Screen):
    COLUMNS: tuple[Column, ...] = ()
    ID_COLUMN = ""
    DEFAULT_SORT = SortKey("score")

    app: FlowTriageApp

    def __init__(self) -> None:
        super().__init__()
        self.sort = self.DEFAULT_SORT
        self.filter_text = ""
        self.predicate: pl.Expr | None = None
        self.scope: pl.Expr | None = None  # always applied, under any filter (one incident's flows)
        self.follow = False
        self.new_above = 0  # shown as "N new above" while the cursor is away from the top
        self._known: pl.Series | None = None  # the ids on screen when the cursor left the top
        self._to_top = False  # a sort was asked for: the cursor goes to the top
        self._generation = 0
        self._shown_version = -1

    # ---- what subclasses provide -------------------------------------------------------

    def frame_of(self, snapshot: Snapshot) -> pl.DataFrame:
        raise NotImplementedError

    def compile_filter(self, text: str) -> pl.Expr | None:
        """The predicate for `text` (None = no filter); raise FilterError on bad text."""
        raise NotImplementedError

    def threshold(self, snapshot: Snapshot) -> float | None:
        return None

    def view_changed(self) -> None:
        """Called on the UI thread after a new view is shown."""

    # ---- views -------------------------------------------------------------------------

    @property
    def table(self) -> FrameTable:
        return self.query_one(FrameTable)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    def on_mount(self) -> None:
        self.table.set_sort(self.sort)
        self.table.focus()
        self.show_snapshot(self.app.snapshot)

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        if snapshot is not None:
            self.request_view()

    def request_view(self) -> None:
        snapshot = self.app.snapshot
        if snapshot is None:
            return
        self._generation += 1
        predicate = self.predicate
        if self.scope is not None:
            predicate = self.scope if predicate is None else self.scope & predicate
        frame = self.frame_of(snapshot)
        at_top = self.follow or self._to_top or self.table.cursor == 0
        if at_top or self._known is None:
            self._known = frame.get_column(self.ID_COLUMN) if self.ID_COLUMN in frame.columns else None
        known = None if at_top else self._known
        self._build(frame, self.sort, predicate, self.threshold(snapshot), snapshot.version, self._generation,
                    known, self.table.cursor_key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="view", description="sort and filter")
    def _build(self, frame, sort, predicate, threshold, version, generation, known=None, cursor_key=None) -> None:
        needed = {c.key: c.sort_by for c in self.COLUMNS}[sort.column]
        if needed not in frame.columns or self.ID_COLUMN not in frame.columns:
            # e.g. the pipeline's first snapshot, before any source summary exists
            self.post_message(ViewReady(empty_view(self.ID_COLUMN), generation))
            return
        view = build_view(
            frame, self.COLUMNS, sort, id_column=self.ID_COLUMN,
            predicate=predicate, threshold=threshold, version=version,
        )
        new_above = 0
        if known is not None:  # rows above the cursor's row that were not there when it left the top
            position = view.index_of(cursor_key)
            if position:
                above = frame.get_column(self.ID_COLUMN).gather(view.order.slice(0, position))
                new_above = int((~above.is_in(known.implode())).sum())
        if not get_current_worker().is_cancelled:
            self.post_message(ViewReady(view, generation, new_above))

    def on_view_ready(self, message: ViewReady) -> None:
        if message.generation != self._generation:
            return  # an answer to a request that a newer one replaced
        self.table.set_sort(self.sort)
        self.table.set_view(message.view, follow=self.follow or self._to_top)
        self._to_top = False
        self.new_above = 0 if self.table.cursor == 0 else message.new_above
        self._shown_version = message.view.version
        self.view_changed()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(f"Could not update the view: {event.worker.error}", severity="error", markup=False)

    # ---- sorting -----------------------------------------------------------------------

    def action_sort(self, column: str) -> None:
        if self.sort.column == column:
            self.sort = self.sort.reversed()
        else:
            # Numbers and times read best largest/newest first; names alphabetically.
            text = {c.key: c for c in self.COLUMNS}[column].align == "left" and column not in ("time", "score", "first", "last")
            self.sort = SortKey(column, descending=not text)
        self._sorted()

    def action_sort_next(self) -> None:
        keys = [c.key for c, _ in self.table.visible_columns] or [c.key for c in self.COLUMNS]
        position = keys.index(self.sort.column) if self.sort.column in keys else -1
        self.sort = SortKey(keys[(position + 1) % len(keys)], self.sort.descending)
        self._sorted()

    def action_sort_reverse(self) -> None:
        self.sort = self.sort.reversed()
        self._sorted()

    def _sorted(self) -> None:
        """After a sort the cursor goes to the top: the screen shows what the order puts first
        (a sort by time, newest first, shows the newest rows, not the old cursor's page)."""
        self._to_top = True
        self.table.set_sort(self.sort)
        self.request_view()

    def title_marks(self) -> Text:
        """What the title says about the view beyond its rows: the sort when its column is not
        on screen (narrow terminals drop columns), and how many rows arrived above the cursor."""
        text = Text()
        shown = {c.key for c, _ in self.table.visible_columns}
        if shown and self.sort.column not in shown:
            header = {c.key: c.header.strip() for c in self.COLUMNS}[self.sort.column]
            arrow = "\u25bc" if self.sort.descending else "\u25b2"
            text.append(f" sorted by {header} {arrow} ", style="bold")
        if self.new_above and not self.follow:
            text.append(f" \u25b2 {self.new_above:,} new above (g: top) ", style="bold reverse")
        return text

    # ---- filtering ---------------------------------------------------------------------

    def action_filter(self) -> None:
        self.filter_bar.open(self.filter_text)

    def action_clear_filter(self) -> None:
        self.apply_filter("")

    def apply_filter(self, text: str) -> bool:
        """Compile and apply `text`; on an error show it under the bar and return False."""
        text = text.strip()
        try:
            predicate = self.compile_filter(text) if text else None
        except FilterError as exc:  # the nfdump filter compiler says where and why
            self._filter_refused(text, exc.position, exc.reason or str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - any other filter's error, shown, not fatal
            self._filter_refused(text, None, str(exc))
            return False
        self.filter_text = text
        self.predicate = predicate
        self.filter_bar.close()
        self.table.focus()
        self.request_view()
        self.view_changed()
        return True

    def _filter_refused(self, text: str, position: int | None, reason: str) -> None:
        if not self.filter_bar.is_open:
            self.filter_bar.open(text)
        self.filter_bar.show_error(position, reason)

    @on(FilterBar.Submitted)
    def _filter_submitted(self, event: FilterBar.Submitted) -> None:
        self.apply_filter(event.text)

    @on(FilterBar.Cancelled)
    def _filter_cancelled(self, event: FilterBar.Cancelled) -> None:
        self.filter_bar.close()
        self.table.focus()
