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


# The bindings in force together on each screen: a key may mean one thing on each.
SCREENS: dict[str, list[list[Binding]]] = {
    "incidents": [keys.APP, keys.TABLE, keys.INCIDENTS],
    "flows": [keys.APP, keys.TABLE, keys.FLOWS],
    "sources": [keys.APP, keys.TABLE, keys.SOURCES],
    "flow detail": [keys.APP, keys.FLOW_DETAIL],
    "help": [keys.APP, keys.HELP],
    "messages": [keys.APP, keys.MESSAGES],
}


def check_keymap(keymap: dict[str, str]) -> dict[str, str]:
    """`keymap` if every id is known and no remapped key lands on a key another action of the
    same screen already has; otherwise a UserError naming the ids (a remap must never hide an
    action silently, e.g. sort_reverse = "R" over retrain)."""
    known = binding_ids()
    unknown = sorted(set(keymap) - known)
    if unknown:
        raise UserError(
            f"[keys]: unknown binding id(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    clashes: list[str] = []
    for screen, groups in SCREENS.items():
        owner: dict[str, str] = {}  # key -> binding id
        for group in groups:
            for binding in group:
                ident = binding.id or binding.action
                for key in keymap.get(ident, binding.key).split(","):
                    key = key.strip()
                    other = owner.setdefault(key, ident)
                    if other != ident and (ident in keymap or other in keymap):
                        clashes.append(f"{key!r} is both {other} and {ident} on the {screen} screen")
    if clashes:
        raise UserError("[keys]: " + "; ".join(dict.fromkeys(clashes)) + "; choose another key")
    return keymap
