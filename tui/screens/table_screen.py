"""TableScreen: what the flows and sources screens share: a FrameTable fed from snapshots,
sorted and filtered by polars in a worker, with keys to sort by any column both ways."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
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
        self._build(self.frame_of(snapshot), self.sort, predicate, self.threshold(snapshot), snapshot.version, self._generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="view", description="sort and filter")
    def _build(self, frame, sort, predicate, threshold, version, generation) -> None:
        needed = {c.key: c.sort_by for c in self.COLUMNS}[sort.column]
        if needed not in frame.columns or self.ID_COLUMN not in frame.columns:
            # e.g. the pipeline's first snapshot, before any source summary exists
            self.post_message(ViewReady(empty_view(self.ID_COLUMN), generation))
            return
        view = build_view(
            frame, self.COLUMNS, sort, id_column=self.ID_COLUMN,
            predicate=predicate, threshold=threshold, version=version,
        )
        if not get_current_worker().is_cancelled:
            self.post_message(ViewReady(view, generation))

    def on_view_ready(self, message: ViewReady) -> None:
        if message.generation != self._generation:
            return  # an answer to a request that a newer one replaced
        self.table.set_sort(self.sort)
        self.table.set_view(message.view, follow=self.follow)
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
        self.table.set_sort(self.sort)
        self.request_view()

    def action_sort_next(self) -> None:
        keys = [c.key for c, _ in self.table.visible_columns] or [c.key for c in self.COLUMNS]
        position = keys.index(self.sort.column) if self.sort.column in keys else -1
        self.sort = SortKey(keys[(position + 1) % len(keys)], self.sort.descending)
        self.table.set_sort(self.sort)
        self.request_view()

    def action_sort_reverse(self) -> None:
        self.sort = self.sort.reversed()
        self.table.set_sort(self.sort)
        self.request_view()

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
