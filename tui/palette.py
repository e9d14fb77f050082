"""The command palette's entries (Ctrl+P): every action by name, for the screen on top."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.screen import Screen

from tui.screens.drilldown import FlowScreen
from tui.screens.flows import FlowsScreen
from tui.screens.table_screen import TableScreen

if TYPE_CHECKING:
    from tui.app import FlowTriageApp


def palette_commands(app: FlowTriageApp, screen: Screen) -> Iterable[SystemCommand]:
    if isinstance(screen, TableScreen):
        yield SystemCommand("Filter", "Filter the rows (nfdump syntax on flows)", screen.action_filter)
        yield SystemCommand("Clear filter", "Show every row again", screen.action_clear_filter)
        yield SystemCommand("Reverse sort", "Sort the other way", screen.action_sort_reverse)
        for col in screen.COLUMNS:
            yield SystemCommand(
                f"Sort by {col.header.strip()}", f"Order rows by {col.key} (again: reverse)",
                lambda key=col.key: screen.action_sort(key),
            )
    if isinstance(screen, FlowsScreen):
        yield SystemCommand("Open flow", "Drill down into the selected flow", screen.table.action_activate)
        yield SystemCommand("Follow", "Keep the cursor on the top row as flows arrive", screen.action_toggle_follow)
        yield SystemCommand("Sources", "Per-source summaries", app.action_show_sources)
        yield SystemCommand("Copy source address", "OSC 52 clipboard", lambda: screen.action_copy("src_addr"))
        yield SystemCommand("Copy destination address", "OSC 52 clipboard", lambda: screen.action_copy("dst_addr"))
    if isinstance(screen, FlowScreen):
        yield SystemCommand("Copy nfdump command", "nfdump -R DIR -t WINDOW 'FILTER'", screen.action_copy_command)
        yield SystemCommand("Back", "Back to the table", screen.action_back)
    if isinstance(screen, FlowsScreen | FlowScreen):
        yield SystemCommand("Mark normal", "The flow is a false positive (n)", screen.action_label_normal)
        yield SystemCommand("Label flow", "Label the flow with a class, or a new one (l)", screen.action_label_pick)
        yield SystemCommand("Note", "Add a note to the flow (N)", screen.action_label_note)
    yield SystemCommand("Undo label", "Undo your last label or note (u)", app.labels.undo)
    yield SystemCommand("Retrain", "Retrain on rule + analyst labels; swap in if not worse (R)", app.action_retrain)
    yield SystemCommand("Roll back model", "Make the previous model version current", app.rollback_model)
    for version in reversed(app.model_versions()):
        yield SystemCommand(f"Use model {version}", "Make this model version current (rollback)",
                            lambda v=version: app.rollback_model(v))
    yield SystemCommand("Pause / resume", "Freeze the view; updates keep counting", app.action_toggle_pause)
    yield SystemCommand("Messages", "Recent skipped lines and read errors", app.action_messages)
    yield SystemCommand("Help", "Every key and its id", app.action_help)

