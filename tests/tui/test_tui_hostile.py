"""Text from a dump is inert: markup stays literal, control sequences never reach the terminal.

Each screen renders a snapshot whose string cells carry Rich/Textual markup, ESC/CSI/OSC
sequences (clear screen, window title, OSC 52 clipboard write), a C1 CSI and bidi overrides.
We check the screen text (the payload is visible, literally) and the exact stream the driver
would write (no ESC/BEL/C1/bidi byte from the data, no link or click action on the data).
"""

from __future__ import annotations

import polars as pl

from engine.config.settings import Config
from engine.core.sanitize import sanitize
from tests.tui_support import (
    make_flows,
    make_snapshot,
    screen_lines,
    screen_text,
    terminal_output,
    widget_text,
)
from tui.app import FlowTriageApp
from tui.feed import SnapshotFeed
from tui.screens.drilldown import FlowScreen
from tui.screens.sources import SourcesScreen

MARKUP = "[bold]B[/x] [@click=app.quit]Q[/] [link=http://evil.example]L[/link]"
CONTROLS = "\x1b[2J\x1b]0;PWNED\x07\x1b]52;c;SGVsbG8=\x07\x9b31m\u202eevil\u202c"
HOSTILE = f"{MARKUP} {CONTROLS}"
HOSTILE_ADDR = "10.9.9.9\x1b]0;PWNED\x07[@click=app.quit]"


def hostile_snapshot():
    flows = make_flows(
        20,
        hostile={
            "src_addr": HOSTILE_ADDR, "reasons": HOSTILE, "verdict": "[red]scan\x1b[5m",
            "file": f"/dumps/{CONTROLS}.txt", "proto": "UDP\x9b", "tcp_flags": "\u202e.......", "score": 1.0,
        },
    )
    return make_snapshot(flows, newest_file=f"nfcapd.{CONTROLS}", model_version="[blink]m[/]")


def hostile_explainer(flows, history):
    return [{"verdict": HOSTILE, "rules": [HOSTILE], "probabilities": {HOSTILE: 0.9},
             "neighbours": [{"label": HOSTILE, HOSTILE: 1.0}], "features": {HOSTILE: 1.0}, HOSTILE: HOSTILE}]


def make_app():
    return FlowTriageApp(SnapshotFeed(hostile_snapshot()), Config(), subtitle="[bold]dir[/]",
                         explainer=hostile_explainer)


async def settle(app, pilot) -> None:
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


def assert_inert(app) -> str:
    """The screen and the terminal stream carry no live control or action from the data."""
    stream = terminal_output(app)
    for forbidden in ("\x1b[2J", "\x1b]", "\x07", "\x9b", "\u202e", "\u202c", "PWNED\x07"):
        assert forbidden not in stream, f"{forbidden!r} reached the terminal"
    for line in screen_lines(app):
        for segment in line:
            if any(marker in segment.text for marker in ("PWNED", "evil", "@click", "[bold]", "10.9.9.9")):
                style = segment.style
                assert style is None or (not style.link and "@click" not in (style.meta or {})), segment
    svg = app.export_screenshot()
    assert "\x1b" not in svg and "\u202e" not in svg and "\x9b" not in svg
    assert app.is_running  # [@click=app.quit] did nothing
    return screen_text(app)


async def test_main_table_shows_hostile_strings_as_text():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.screen.table.cursor_row["src_addr"] == HOSTILE_ADDR  # the hostile flow is on top
        text = assert_inert(app)
        assert "[bold]B[/x] [@click=app.quit]Q[/]" in text  # the reason line, literally
        assert "\u241b[2J\u241b]0;PWNED\u2407" in sanitize(HOSTILE)
        assert "10.9.9.9\u241b]" in text  # the address cell, control shown as a symbol
        assert "[red]sc" in text
        assert "[blink]m[/]" in text or "[blink" in text  # model version in the status line
        await pilot.press("c")  # not an IP address: nothing is copied
        assert app.clipboard == ""


async def test_drill_down_shows_hostile_strings_as_text():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, FlowScreen)
        text = assert_inert(app)
        assert "[bold]B[/x] [@click=app.quit]Q[/]" in text
        assert "\u241b[2J\u241b]0;PWNED\u2407" in text
        assert "\\u202eevil\\u202c" in text
        assert app.screen.command == ""  # no shell command is built from a non-address
        whole = "\n".join(widget_text(w) for w in app.screen.query("#detail Static"))  # scrolled-away parts too
        for forbidden in ("\x1b", "\x07", "\x9b", "\u202e", "\u202c"):
            assert forbidden not in whole
        assert whole.count("[@click=app.quit]Q[/]") >= 5  # why, detector, neighbours, features, extra
        await pilot.press("end")
        await settle(app, pilot)
        text = assert_inert(app)
        assert "no nfdump command" in text


async def test_sources_screen_shows_hostile_strings_as_text():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("tab")
        await settle(app, pilot)
        assert isinstance(app.screen, SourcesScreen)
        assert app.screen.table.cursor_row["src_addr"] == HOSTILE_ADDR
        text = assert_inert(app)
        assert "10.9.9.9\u241b" in text
        await pilot.press("enter")  # refuses to build `src host <not an address>`
        await settle(app, pilot)
        assert isinstance(app.screen, SourcesScreen)
        assert_inert(app)


def test_sanitize_makes_every_control_visible():
    assert sanitize("a\x1b[2Jb") == "a\u241b[2Jb"
    assert sanitize("\x1b]0;t\x07") == "\u241b]0;t\u2407"
    assert sanitize("tab\there\nnl") == "tab\u2409here\u240anl"
    assert sanitize("\x7f\x9b\x85") == "\u2421\\x9b\\x85"
    assert sanitize("x\u202ey\u2066z\u200b") == "x\\u202ey\\u2066z\\u200b"
    assert sanitize("\udcff") == "\\udcff"  # a lone surrogate from surrogateescape
    assert sanitize("[bold]x[/] 2001:db8::1 \u00e9\u4e2d") == "[bold]x[/] 2001:db8::1 \u00e9\u4e2d"
    assert sanitize(None) == "" and sanitize(53) == "53"


def test_every_string_cell_of_a_snapshot_is_sanitized_when_drawn():
    from tui.columns import FLOW_COLUMNS, SOURCE_COLUMNS

    snap = hostile_snapshot()
    for columns, frame in ((FLOW_COLUMNS, snap.flows), (SOURCE_COLUMNS, snap.sources)):
        for row in frame.filter(pl.col("src_addr").str.contains("PWNED")).rows(named=True):
            for col in columns:
                text, _ = col.draw(row, 200)
                assert text == sanitize(text), (col.key, text)
