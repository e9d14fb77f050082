"""FrameTable: a Line-API table over a TableView, fast at a million rows.

Only the rows on screen are turned into Python objects (a page at a time) and each drawn line
is cached as a Strip. The cursor is an identity (the row's id, e.g. flow_id), not a position:
when a new view arrives (a sort, a filter, a live update) the cursor finds its row again and
keeps its place on the screen. Cells are drawn as plain Segments from sanitized text, so no
dump string is ever parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui import keys
from tui.columns import Column, layout
from tui.format import fit
from tui.view import SortKey, TableView, empty_view

PAGE = 64


class FrameTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {
        "frame-table--header",
        "frame-table--sorted",
        "frame-table--cursor",
        "frame-table--hot",
        "frame-table--dim",
        "frame-table--bar",
        "frame-table--empty",
    }
    DEFAULT_CSS = """
    FrameTable {
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
        background: $surface;
    }
    FrameTable > .frame-table--header { text-style: bold; background: $panel; color: $text; }
    FrameTable > .frame-table--sorted { text-style: bold underline; background: $panel; color: $accent; }
    FrameTable > .frame-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    FrameTable:blur > .frame-table--cursor { background: $block-cursor-blurred-background; }
    FrameTable > .frame-table--hot { color: $error; }
    FrameTable > .frame-table--dim { color: $text-muted; }
    FrameTable > .frame-table--bar { color: $warning; }
    FrameTable > .frame-table--empty { color: $text-muted; text-style: italic; }
    """
    BINDINGS = keys.TABLE

    class CursorMoved(Message):
        def __init__(self, table: FrameTable, key: object | None, index: int) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.index = index

        @property
        def control(self) -> FrameTable:
            return self.table

    class Activated(Message):
        def __init__(self, table: FrameTable, key: object | None, row: dict | None) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.row = row

        @property
        def control(self) -> FrameTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        id_column: str,
        *,
        empty_text: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = tuple(columns)
        self.view: TableView = empty_view(id_column)
        self.sort: SortKey | None = None
        self.cursor = 0
        self.cursor_key: object | None = None
        self.empty_text = empty_text
        self._strips: LRUCache[tuple, Strip] = LRUCache(1024)
        self._pages: LRUCache[int, list[dict]] = LRUCache(16)
        self._layout: list[tuple[Column, int]] = []
        self._layout_width = -1
        # Content widths only grow during a session, so columns do not jitter on live updates.
        self._measured: dict[str, int] = {}

    # ---- data --------------------------------------------------------------------------

    def set_view(self, view: TableView, *, follow: bool = False) -> None:
        """Show `view`; the cursor stays on its row (or goes to the top when `follow`)."""
        rows_on_screen = max(1, self.size.height - 1)
        screen_offset = min(max(0, self.cursor - int(self.scroll_offset.y)), rows_on_screen - 1)
        self.view = view
        for key, width in view.measured.items():
            self._measured[key] = max(width, self._measured.get(key, 0))
        self._pages.clear()
        self._strips.clear()
        self._layout_width = -1
        index = 0 if follow else view.index_of(self.cursor_key)
        if index is None:  # the row left the view: stay at the same position
            index = min(self.cursor, len(view) - 1)
        self.cursor = max(0, index)
        moved = view.key_at(self.cursor) != self.cursor_key
        self.cursor_key = view.key_at(self.cursor)
        self.virtual_size = Size(self.size.width, len(view) + 1)
        target = 0 if follow else max(0, self.cursor - screen_offset)
        self.scroll_to(y=target, animate=False, force=True, immediate=True)
        self.refresh()
        if moved:
            self.post_message(self.CursorMoved(self, self.cursor_key, self.cursor))

    def set_sort(self, sort: SortKey) -> None:
        self.sort = sort
        self._strips.clear()
        self.refresh()

    @property
    def cursor_row(self) -> dict | None:
        return self._page_rows(self.cursor)

    def _page_rows(self, index: int) -> dict | None:
        if not 0 <= index < len(self.view):
            return None
        page_no = index // PAGE
        page = self._pages.get(page_no)
        if page is None:
            page = self.view.rows(page_no * PAGE, page_no * PAGE + PAGE)
            self._pages[page_no] = page
        return page[index - page_no * PAGE]

    # ---- cursor ------------------------------------------------------------------------

    @property
    def rows_on_screen(self) -> int:
        return max(1, self.size.height - 1)

    def move_cursor(self, index: int) -> None:
        count = len(self.view)
        if count == 0:
            return
        index = max(0, min(count - 1, index))
        if index == self.cursor and self.cursor_key == self.view.key_at(index):
            return
        old = self.cursor
        self.cursor = index
        self.cursor_key = self.view.key_at(index)
        top = int(self.scroll_offset.y)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + self.rows_on_screen:
            self.scroll_to(y=index - self.rows_on_screen + 1, animate=False, immediate=True)
        else:
            self.refresh_line(old + 1)
            self.refresh_line(index + 1)
        self.post_message(self.CursorMoved(self, self.cursor_key, index))

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self.rows_on_screen)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self.rows_on_screen)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.view) - 1)

    def on_click(self, event: events.Click) -> None:
        """A click puts the cursor on the row; a double click opens it (the mouse is optional)."""
        y = event.get_content_offset(self)
        if y is None or y.y < 1:
            return
        self.move_cursor(int(self.scroll_offset.y) + y.y - 1)
        if event.chain >= 2:
            self.action_activate()

    def action_activate(self) -> None:
        if len(self.view):
            self.post_message(self.Activated(self, self.cursor_key, self.cursor_row))

    # ---- drawing -----------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.view) + 1)
        self._strips.clear()
        self._layout_width = -1

    @property
    def visible_columns(self) -> list[tuple[Column, int]]:
        width = self.line_width
        if width != self._layout_width:
            self._layout = layout(self.columns, width, self._measured)
            self._layout_width = width
        return self._layout

    @property
    def line_width(self) -> int:
        return self.scrollable_content_region.width

    def render_line(self, y: int) -> Strip:
        width = self.line_width
        if y == 0:
            return self._cached(("header", width, self.sort), self._render_header)
        index = int(self.scroll_offset.y) + y - 1
        if len(self.view) == 0:
            if y == 1 and self.empty_text:
                style = self.get_component_rich_style("frame-table--empty")
                return Strip([Segment(fit(" " + self.empty_text, width), style)], width)
            return Strip.blank(width, self.rich_style)
        if index >= len(self.view):
            return Strip.blank(width, self.rich_style)
        is_cursor = index == self.cursor
        return self._cached((index, is_cursor, width, self.has_focus), lambda: self._render_row(index, is_cursor))

    def _cached(self, key: tuple, build) -> Strip:
        strip = self._strips.get(key)
        if strip is None:
            strip = build()
            self._strips[key] = strip
        return strip

    def _render_header(self) -> Strip:
        width = self.line_width
        base = self.get_component_rich_style("frame-table--header")
        sorted_style = self.get_component_rich_style("frame-table--sorted")
        segments: list[Segment] = []
        for position, (col, cell_width) in enumerate(self.visible_columns):
            if position:
                segments.append(Segment(" ", base))
            if self.sort is not None and self.sort.column == col.key:
                arrow = "\u25bc" if self.sort.descending else "\u25b2"
                name = set_cell_size(col.header.strip(), min(cell_len(col.header.strip()), cell_width - 1))
                text = fit(name + arrow, cell_width, align=col.align)
                segments.append(Segment(text, sorted_style))
            else:
                segments.append(Segment(fit(col.header, cell_width, align=col.align), base))
        return self._finish(segments, width, base)

    def _render_row(self, index: int, is_cursor: bool) -> Strip:
        width = self.line_width
        row = self._page_rows(index) or {}
        base = self.rich_style
        cursor = self.get_component_rich_style("frame-table--cursor") if is_cursor else None
        if cursor is not None:
            base = base + cursor
        segments: list[Segment] = []
        for position, (col, cell_width) in enumerate(self.visible_columns):
            if position:
                segments.append(Segment(" ", base))
            text, kind = col.draw(row, cell_width)
            style = base
            # The cursor row is drawn in the cursor's colours only: a muted or coloured cell on
            # the cursor background can vanish (ANSI themes), and the row must stay readable.
            if kind is not None and cursor is None:
                style = base + self.get_component_rich_style(f"frame-table--{kind}", partial=True)
            segments.append(Segment(fit(text, cell_width, align=col.align, middle=col.middle), style))
        return self._finish(segments, width, base)

    @staticmethod
    def _finish(segments: list[Segment], width: int, style: Style) -> Strip:
        strip = Strip(segments)
        if strip.cell_length < width:
            strip = Strip([*segments, Segment(" " * (width - strip.cell_length), style)])
        return strip.crop(0, width)
