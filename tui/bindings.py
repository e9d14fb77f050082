"""Every key binding of the app, by context, and the keymap check for `[keys]` in config.

Each Binding has an id; `[keys]` in config.toml maps ids to keys (`sort_score = "S"`), applied
with App.set_keymap. An unknown id is a user error, not a silent no-op.
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.binding import Binding

from engine.errors import UserError


def contexts() -> list[tuple[str, list[Binding]]]:
    # Imported here: the screens import the app's helpers, and this module is imported by both.
    from tui.app import FlowTriageApp
    from tui.feedback import Confirm, LabelPicker
    from tui.filter_bar import FilterBar
    from tui.flow_table import FrameTable
    from tui.screens.drilldown import FlowScreen
    from tui.screens.flows import FlowsScreen
    from tui.screens.help import HelpScreen
    from tui.screens.messages import MessagesScreen
    from tui.screens.sources import SourcesScreen

    def own(cls) -> list[Binding]:
        return [b for b in cls.BINDINGS if isinstance(b, Binding)]

    return [
        ("everywhere", own(FlowTriageApp)),
        ("tables", own(FrameTable)),
        ("flows (main)", own(FlowsScreen)),
        ("sources", own(SourcesScreen)),
        ("flow detail", own(FlowScreen)),
        ("filter bar", own(FilterBar)),
        ("help", own(HelpScreen)),
        ("messages", own(MessagesScreen)),
        ("picker, note", own(LabelPicker)),
        ("confirm", own(Confirm)),
    ]


def all_bindings() -> Iterator[tuple[str, Binding]]:
    for context, bindings in contexts():
        for binding in bindings:
            yield context, binding


def binding_ids() -> set[str]:
    return {b.id for _, b in all_bindings() if b.id}


def check_keymap(keys: dict[str, str]) -> dict[str, str]:
    """`keys` if every id is known; otherwise a UserError naming the unknown ids."""
    known = binding_ids()
    unknown = sorted(set(keys) - known)
    if unknown:
        raise UserError(
            f"[keys]: unknown binding id(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return keys
