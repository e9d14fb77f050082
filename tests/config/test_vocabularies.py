"""The config's closed vocabularies are the ones the code acts on (one list each)."""

from textual.theme import BUILTIN_THEMES

from engine.config.settings import TUI_THEMES


def test_theme_list_is_textuals():
    # textual is pinned exactly; a new release that adds or drops a theme fails here first
    assert set(TUI_THEMES) == set(BUILTIN_THEMES)
