"""Every key binding of the app, as data: one list per context, each Binding with an id.

The widgets and screens take their BINDINGS from here, and the help screen and the `[keys]`
check read the same lists, so nothing needs to import a screen to know its keys. `[keys]` in
config.toml maps ids to keys (`sort_score = "S"`), applied with App.set_keymap.
"""

from __future__ import annotations

from textual.binding import Binding

from tui.columns import FLOW_COLUMNS, INCIDENT_COLUMNS, SOURCE_COLUMNS, Column


def sort_bindings(columns: tuple[Column, ...]) -> list[Binding]:
    """Digit keys sort by the n-th column (again: the other way); ids are sort_<column>."""
    return [
        Binding(digit, f"sort('{col.key}')", f"Sort by {col.header.strip()}", show=False, id=f"sort_{col.key}")
        for digit, col in zip("1234567890", columns, strict=False)
    ]


# n / l / u / N / R, the same ids on the flows table and in the drill-down.
FEEDBACK: list[Binding] = [
    Binding("n", "label_normal", "Normal", tooltip="Mark the flow normal (a false positive)", id="label_normal"),
    Binding("l", "label_pick", "Label", tooltip="Label the flow with a class (or a new one)", id="label_pick"),
    Binding("u", "label_undo", "Undo", show=False, tooltip="Undo your last label or note", id="label_undo"),
    Binding("N", "label_note", "Note", show=False, tooltip="Add a note to the flow", id="label_note"),
    Binding("R", "app.retrain", "Retrain", show=False,
            tooltip="Retrain on rule + analyst labels; swap the model in if not worse", id="retrain"),
]

APP: list[Binding] = [
    Binding("ctrl+q,ctrl+c", "quit", "Quit", show=False, priority=True, id="quit_now"),
    Binding("question_mark", "help", "Help", tooltip="Every key, its action and its id", id="help"),
    Binding("f1", "help", "Help", show=False, tooltip="Every key, its action and its id", id="help_f1"),
    Binding("p,space", "toggle_pause", "Pause", tooltip="Freeze the view; updates keep counting", id="pause"),
    Binding("m", "messages", "Messages", show=False, tooltip="Recent skipped lines and read errors", id="messages"),
]

TABLE: list[Binding] = [
    Binding("up,k", "cursor_up", "Up", show=False, id="cursor_up"),
    Binding("down,j", "cursor_down", "Down", show=False, id="cursor_down"),
    Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="page_up"),
    Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="page_down"),
    Binding("home,g", "first", "First row", show=False, id="first_row"),
    Binding("end,G", "last", "Last row", show=False, id="last_row"),
    Binding("enter", "activate", "Open", tooltip="Open the row: a flow's detail, a source's flows", id="open"),
]

FLOWS: list[Binding] = [
    Binding("slash", "filter", "Filter", tooltip="Filter flows (nfdump filter syntax)", id="filter"),
    Binding("s", "sort_next", "Sort", tooltip="Sort by the next column", id="sort_next"),
    Binding("r", "sort_reverse", "Rev", tooltip="Reverse the sort", id="sort_reverse"),
    Binding("f", "toggle_follow", "Follow", tooltip="Keep the cursor on the top row", id="follow"),
    Binding("tab", "app.show_sources", "Sources", tooltip="Per-source summaries", id="sources", priority=True),
    Binding("q", "app.request_quit", "Quit", tooltip="Quit (asks first; ctrl+q quits at once)", id="quit"),
    Binding("x", "clear_filter", "Clear filter", show=False, id="clear_filter"),
    Binding("c", "copy('src_addr')", "Copy source", show=False, id="copy_source"),
    Binding("C", "copy('dst_addr')", "Copy destination", show=False, id="copy_destination"),
    *FEEDBACK,
    *sort_bindings(FLOW_COLUMNS),
]

INCIDENTS: list[Binding] = [
    Binding("slash", "filter", "Find", tooltip="Incidents whose class or addresses contain the text", id="filter"),
    Binding("s", "sort_next", "Sort", tooltip="Sort by the next column", id="sort_next"),
    Binding("r", "sort_reverse", "Rev", tooltip="Reverse the sort", id="sort_reverse"),
    Binding("f", "toggle_follow", "Follow", tooltip="Keep the cursor on the top row", id="follow"),
    Binding("tab", "app.show_sources", "Sources", tooltip="Per-source summaries", id="sources", priority=True),
    Binding("a", "all_flows", "All flows", tooltip="Every retained flow, incident or not", id="all_flows"),
    Binding("n", "label_normal", "Normal", tooltip="Mark every retained flow of the incident normal (asks first)",
            id="label_normal"),
    Binding("l", "label_pick", "Label", tooltip="Label every retained flow of the incident (asks first)",
            id="label_pick"),
    Binding("R", "app.retrain", "Retrain", show=False,
            tooltip="Retrain on rule + analyst labels; swap the model in if not worse", id="retrain"),
    Binding("q", "app.request_quit", "Quit", tooltip="Quit (asks first; ctrl+q quits at once)", id="quit"),
    Binding("x", "clear_filter", "Clear filter", show=False, id="clear_filter"),
    *sort_bindings(INCIDENT_COLUMNS),
]

SOURCES: list[Binding] = [
    Binding("q,backspace,escape", "back", "Back", id="back"),
    Binding("tab", "back", "Flows", show=False, id="sources", priority=True),
    Binding("slash", "filter", "Filter", id="filter"),
    Binding("s", "sort_next", "Sort", tooltip="Sort by the next column", id="sort_next"),
    Binding("r", "sort_reverse", "Rev", tooltip="Reverse the sort", id="sort_reverse"),
    Binding("x", "clear_filter", "Clear filter", show=False, id="clear_filter"),
    Binding("c", "copy", "Copy address", show=False, id="copy_source"),
    *sort_bindings(SOURCE_COLUMNS),
]

FLOW_DETAIL: list[Binding] = [
    Binding("q,backspace,escape", "back", "Back", id="back"),
    Binding("c", "copy('src_addr')", "Copy src", id="copy_source"),
    Binding("C", "copy('dst_addr')", "Copy dst", id="copy_destination"),
    Binding("y", "copy_command", "Copy nfdump cmd", id="copy_command"),
    *FEEDBACK,
    Binding("j", "scroll('down')", "Down", show=False, id="scroll_down"),
    Binding("k", "scroll('up')", "Up", show=False, id="scroll_up"),
]

FILTER_BAR: list[Binding] = [Binding("escape", "cancel", "Cancel", id="filter_cancel")]

HELP: list[Binding] = [
    Binding("q,backspace,escape,question_mark", "back", "Back", id="help_back"),
    Binding("j", "scroll('down')", "Down", show=False, id="help_down"),
    Binding("k", "scroll('up')", "Up", show=False, id="help_up"),
]

MESSAGES: list[Binding] = [
    Binding("q,backspace,escape,m", "back", "Back", id="messages_back"),
    Binding("j", "scroll('down')", "Down", show=False, id="messages_down"),
    Binding("k", "scroll('up')", "Up", show=False, id="messages_up"),
]

MODAL: list[Binding] = [Binding("escape", "cancel", "Cancel", show=False, id="modal_cancel")]

CONFIRM: list[Binding] = [
    Binding("y", "answer(True)", "Yes", id="confirm_yes"),
    Binding("n,escape", "answer(False)", "No", id="confirm_no"),
]

# (context shown in help, its bindings), in the order help lists them
CONTEXTS: list[tuple[str, list[Binding]]] = [
    ("everywhere", APP),
    ("tables", TABLE),
    ("incidents (main)", INCIDENTS),
    ("flows", FLOWS),
    ("sources", SOURCES),
    ("flow detail", FLOW_DETAIL),
    ("filter bar", FILTER_BAR),
    ("help", HELP),
    ("messages", MESSAGES),
    ("picker, note", MODAL),
    ("confirm", CONFIRM),
]
