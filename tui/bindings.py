"""Every key binding of the app, by context (tui.keys), and the keymap check for `[keys]`.

Each Binding has an id; `[keys]` in config.toml maps ids to keys (`sort_score = "S"`), applied
with App.set_keymap. An unknown id is a user error, not a silent no-op.
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.binding import Binding

from engine.core.errors import UserError
from tui import keys


def contexts() -> list[tuple[str, list[Binding]]]:
    return keys.CONTEXTS


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
