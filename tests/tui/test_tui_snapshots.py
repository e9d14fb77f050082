"""SVG snapshots of the main screens at 80x24 over fixed data (pytest-textual-snapshot).

Regenerate deliberately after a visual change: `pytest tests/test_tui_snapshots.py --snapshot-update`,
then look at the report.
"""

from __future__ import annotations

from engine.config.settings import Config
from tests.tui_support import make_snapshot, with_incidents
from tui.app import FlowTriageApp
from tui.feed import SnapshotFeed


def make_app() -> FlowTriageApp:
    return FlowTriageApp(SnapshotFeed(make_snapshot()), Config(), subtitle="watching /dumps")


def keys_then_settle(*keys: str):
    async def run_before(pilot) -> None:
        for _ in range(2):
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
        for key in keys:
            await pilot.press(key)
            for _ in range(2):
                await pilot.pause()
                await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


def test_main_screen(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=keys_then_settle("down", "down"))


def test_main_screen_sorted_by_time_ascending(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=keys_then_settle("1", "1"))


def test_incidents_screen(snap_compare):
    app = FlowTriageApp(SnapshotFeed(with_incidents(make_snapshot())), Config(), subtitle="watching /dumps",
                        start="incidents")
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys_then_settle())


def test_drill_down(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=keys_then_settle("down", "enter"))


def test_sources_screen(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=keys_then_settle("tab"))


def test_help_screen(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=keys_then_settle("question_mark"))
