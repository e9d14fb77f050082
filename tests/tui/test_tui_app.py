"""The TUI driven by keys at 80x24 (Textual Pilot) over hand-fed snapshots."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from engine.config.settings import Config, TuiConfig
from engine.core.errors import UserError
from tests.tui_support import make_flows, make_snapshot, screen_text, widget_text
from tui.app import FlowTriageApp
from tui.feed import SnapshotFeed
from tui.screens.drilldown import FlowScreen
from tui.screens.flows import FlowsScreen
from tui.screens.help import HelpScreen
from tui.screens.sources import SourcesScreen


def make_app(snapshot=None, config: Config | None = None, **kwargs) -> tuple[FlowTriageApp, SnapshotFeed]:
    feed = SnapshotFeed(snapshot if snapshot is not None else make_snapshot())
    return FlowTriageApp(feed, config or Config(), subtitle="watching /dumps", **kwargs), feed


async def settle(app, pilot) -> None:
    """Let messages, workers and the messages they post run to completion."""
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


def table(app):
    return app.screen.table


def ordered_column(app, column: str) -> list:
    view = table(app).view
    return [row[column] for row in view.rows(0, len(view))]


async def test_main_table_lists_flows_most_suspicious_first():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, FlowsScreen)
        scores = ordered_column(app, "score")
        assert len(scores) == 60 and scores == sorted(scores, reverse=True)
        text = screen_text(app)
        for header in ("time", "scor\u25bc", "verdict", "source", "destination", "pkts", "bytes"):
            assert header in text
        assert "52 flagged" in text and "2 skip" in text and "model default-1" in text


async def test_sort_by_any_column_both_ways_puts_the_cursor_on_the_top_row():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "down", "down")
        await pilot.press("1")  # time, newest first: the screen shows the newest flows
        await settle(app, pilot)
        times = ordered_column(app, "ts_first")
        assert times == sorted(times, reverse=True)
        assert table(app).cursor == 0 and table(app).cursor_row["ts_first"] == max(times)
        await pilot.press("1")  # the same key again: the other way
        await settle(app, pilot)
        assert ordered_column(app, "ts_first") == sorted(times)
        assert table(app).cursor == 0
        await pilot.press("8", "r")  # bytes, then reversed to ascending
        await settle(app, pilot)
        sizes = ordered_column(app, "bytes")
        assert sizes == sorted(sizes)
        assert table(app).cursor == 0 and table(app).cursor_row["bytes"] == min(sizes)
        await pilot.press("s")  # next column: duration is hidden at 80 columns, so back to time
        await settle(app, pilot)
        assert app.screen.sort.column == "time"


async def test_a_sort_by_a_column_hidden_at_80_columns_says_so():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("9")  # duration: dropped at 80 columns
        await settle(app, pilot)
        assert app.screen.sort.column == "duration"
        assert "sorted by dur \u25bc" in screen_text(app).splitlines()[0]


async def test_addresses_sort_as_addresses_not_text():
    flows = make_flows(3).with_columns(src_addr=pl.Series(["10.0.0.9", "10.0.0.10", "9.1.1.1"]))
    app, _ = make_app(make_snapshot(flows))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")  # source: addresses ascending
        await settle(app, pilot)
        assert ordered_column(app, "src_addr") == ["9.1.1.1", "10.0.0.9", "10.0.0.10"]


async def test_live_update_keeps_the_cursor_on_its_flow():
    app, feed = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "down")
        chosen = table(app).cursor_key
        bigger = pl.concat([make_flows(60), make_flows(30, start_id=1000).with_columns(score=pl.lit(0.99))])
        feed.publish(make_snapshot(bigger, version=2))
        app.apply_latest()
        await settle(app, pilot)
        assert len(table(app).view) == 90
        assert table(app).cursor_key == chosen
        assert table(app).cursor > 2  # thirty better flows arrived above it
        assert "30 new above" in screen_text(app)  # and the title says so
        await pilot.press("g")  # to the top: nothing is new above any more
        await settle(app, pilot)
        assert "new above" not in screen_text(app)


async def test_follow_tracks_the_top_and_pause_freezes_the_view():
    app, feed = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "f")
        assert table(app).cursor == 0
        newcomer = make_flows(1, start_id=5000).with_columns(score=pl.lit(1.0))
        feed.publish(make_snapshot(pl.concat([make_flows(60), newcomer]), version=2))
        app.apply_latest()
        await settle(app, pilot)
        assert table(app).cursor_key == 5000  # followed the new top flow
        await pilot.press("p")
        later = make_snapshot(make_flows(10), version=3)
        feed.publish(dataclasses.replace(later, counters=dataclasses.replace(later.counters, flows=61 + 10)))
        app.apply_latest()
        await settle(app, pilot)
        assert app.snapshot.version == 2 and len(table(app).view) == 61
        assert "PAUSED +10 flows" in screen_text(app)  # flows not shown, not snapshots
        await pilot.press("p")
        await settle(app, pilot)
        assert app.snapshot.version == 3 and len(table(app).view) == 10


async def test_drill_down_explains_the_flow_and_goes_back_without_esc():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        row = table(app).cursor_row
        for back in ("q", "backspace", "escape"):
            await pilot.press("enter")
            await settle(app, pilot)
            assert isinstance(app.screen, FlowScreen)
            assert app.screen.row["flow_id"] == row["flow_id"]
            assert app.screen.command.startswith("nfdump -R /dumps -t 2026/11/22.08:37:")
            assert f"host {row['src_addr']} and host {row['dst_addr']}" in app.screen.command
            text = "\n".join(widget_text(w) for w in app.screen.query("#detail Static"))
            assert "Why" in text and "Same source" in text and "Same pair" in text
            await pilot.press(back)
            await settle(app, pilot)
            assert isinstance(app.screen, FlowsScreen)


async def test_drill_down_copies_addresses_with_osc52():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        row = table(app).cursor_row
        await pilot.press("c")
        assert app.clipboard == row["src_addr"]
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("C")
        assert app.clipboard == row["dst_addr"]
        await pilot.press("y")
        assert app.clipboard == app.screen.command


async def test_drill_down_shows_the_detectors_explanation():
    def explain(flows, history):
        assert history is not None and history.height == 60  # the retained flows, without a pipeline
        return [{"flow": {}, "score": 0.97, "verdict": "amplification", "rules": ["amplification"],
                 "outlier_percentile": 99.5, "outlier": "knn",
                 "probabilities": {"amplification": 0.9, "normal": 0.1},
                 "neighbours": [{"label": "amplification", "distance": 0.01, "count": 3.0}],
                 "features": {"log_bytes": 7.2, "client_10s_flows": 42.0}}]

    app, _ = make_app(explainer=explain)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        text = screen_text(app)
        assert "rules fired: amplification" in text and "outlier percentile 99.5" in text
        assert "amplification   0.90" in text and "\u2022 amplification" in text


async def test_sources_screen_sorts_and_enter_shows_that_sources_flows():
    pytest.importorskip("engine.detect.rules", reason="the filter compiler (engine.detect.rules) is not merged yet")
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("tab")
        await settle(app, pilot)
        assert isinstance(app.screen, SourcesScreen)
        assert ordered_column(app, "max_score") == sorted(ordered_column(app, "max_score"), reverse=True)
        await pilot.press("2")  # flows, most first
        await settle(app, pilot)
        flows = ordered_column(app, "flows")
        assert flows == sorted(flows, reverse=True)
        source = table(app).cursor_row["src_addr"]
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, FlowsScreen)
        assert app.screen.filter_text == f"src host {source}"
        assert set(ordered_column(app, "src_addr")) == {source}


async def test_sources_screen_back_keys():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for back in ("q", "backspace", "tab"):
            await pilot.press("tab")
            await settle(app, pilot)
            assert isinstance(app.screen, SourcesScreen) and len(table(app).view) > 0
            await pilot.press(back)
            await settle(app, pilot)
            assert isinstance(app.screen, FlowsScreen)


async def test_filter_applies_nfdump_syntax_and_points_at_errors():
    pytest.importorskip("engine.detect.rules", reason="the filter compiler (engine.detect.rules) is not merged yet")
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"proto tcp", "enter")
        await settle(app, pilot)
        assert set(ordered_column(app, "proto")) == {"TCP"}
        assert not app.screen.filter_bar.is_open
        await pilot.press("slash", "ctrl+u", *"proto tcp and", "enter")
        await settle(app, pilot)
        bar = app.screen.filter_bar
        assert bar.is_open  # an error keeps the bar open
        error = str(bar.query_one(".filter-error").render())
        caret_line = error.splitlines()[0]
        assert caret_line.index("^") == len("filter> ") + len("proto tcp and")
        assert set(ordered_column(app, "proto")) == {"TCP"}  # the old filter still applies
        await pilot.press("escape", "x")
        await settle(app, pilot)
        assert len(table(app).view) == 60


async def test_help_lists_every_binding_with_its_id():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        from tui.bindings import binding_ids

        listed = {binding_id for _, _, _, binding_id in app.screen.rows}
        assert listed == binding_ids()
        assert ("flows", "r", "Reverse the sort", "sort_reverse") in app.screen.rows
        assert "sort_reverse" in screen_text(app) or "cursor_up" in screen_text(app)
        assert binding_ids() >= {"sort_time", "open", "sources", "help", "quit"}
        await pilot.press("q")
        await settle(app, pilot)
        assert isinstance(app.screen, FlowsScreen)


async def test_q_quits_from_the_main_screen_after_asking():
    from tui.feedback import Confirm

    app, _ = make_app(quit_warning="The demo's labels go with it.")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("q")  # q is "back" everywhere else: on the main screen it asks
        await settle(app, pilot)
        assert isinstance(app.screen, Confirm) and app.is_running
        assert "The demo's labels go with it." in screen_text(app)
        await pilot.press("n")
        await settle(app, pilot)
        assert isinstance(app.screen, FlowsScreen) and app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_code == 0


async def test_keys_remap_by_binding_id():
    app, _ = make_app(config=Config(keys={"sort_reverse": "v", "follow": "F"}))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("v")
        await settle(app, pilot)
        assert app.screen.sort.descending is False
        await pilot.press("F")
        assert app.screen.follow


def test_a_remap_onto_a_key_in_use_is_a_user_error_naming_both():
    # R is Retrain on the flows screen: sort_reverse = "R" used to hide it silently
    with pytest.raises(UserError, match="'R' is both sort_reverse and retrain on the flows screen"):
        make_app(config=Config(keys={"sort_reverse": "R"}))


def test_unknown_binding_id_or_theme_is_a_user_error():
    with pytest.raises(UserError, match="sort_nowhere"):
        make_app(config=Config(keys={"sort_nowhere": "z"}))
    with pytest.raises(UserError, match="not a theme"):
        make_app(config=Config(tui=TuiConfig(theme="no-such-theme")))


async def test_ansi_theme_for_plain_terminals():
    app, _ = make_app(config=Config(tui=TuiConfig(theme="ansi-dark")))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.theme == "ansi-dark"


async def test_command_palette_offers_the_main_actions():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Filter", "Reverse sort", "Sort by time", "Open flow", "Follow", "Sources", "Pause / resume", "Help"):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"


async def test_a_click_moves_the_cursor_and_a_double_click_opens():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.click("#flows", offset=(10, 4))  # the header is line 0: row 3
        assert table(app).cursor == 3
        await pilot.click("#flows", offset=(10, 2), times=2)
        await settle(app, pilot)
        assert isinstance(app.screen, FlowScreen)


async def test_messages_screen_lists_skipped_lines_as_text():
    snap = make_snapshot()
    from dataclasses import replace

    snap = replace(snap, messages=("nfcapd.1.txt:7: not a flow line: '\x1b[2Jx'", "nfcapd.2.txt: unreadable"))
    app, _ = make_app(snap)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("m")
        await settle(app, pilot)
        text = screen_text(app)
        assert "nfcapd.1.txt:7: not a flow line: '\u241b[2Jx'" in text and "nfcapd.2.txt: unreadable" in text
        await pilot.press("q")
        await settle(app, pilot)
        assert isinstance(app.screen, FlowsScreen)


async def test_a_stopped_pipeline_is_shown():
    app, feed = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        feed.error = OSError("disk gone")
        app.apply_latest()
        await settle(app, pilot)
        assert "STOPPED" in screen_text(app)


async def test_the_ui_shows_while_the_pipeline_is_still_being_built():
    import threading

    from tui.feed import StartingPipeline

    release = threading.Event()
    inner = SnapshotFeed()  # stands in for the pipeline: publishes by hand, keeps no labels
    inner.feedback = None

    def build():
        release.wait(10)
        return inner, None

    feed = StartingPipeline(build)
    app = FlowTriageApp(feed, Config(), subtitle="watching /dumps")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "loading the model" in screen_text(app)
        release.set()
        feed._thread.join(10)
        inner.publish(make_snapshot())
        app.apply_latest()
        await settle(app, pilot)
        assert len(table(app).view) == 60 and "loading the model" not in screen_text(app)


async def test_a_pipeline_that_cannot_start_is_shown_and_kept():
    from tui.feed import StartingPipeline

    def build():
        raise UserError("model.skops: refused")

    feed = StartingPipeline(build)
    app = FlowTriageApp(feed, Config(), subtitle="watching /dumps")
    async with app.run_test(size=(80, 24)) as pilot:
        feed._thread.join(10)
        app.apply_latest()
        await settle(app, pilot)
        assert "STOPPED" in screen_text(app) and "could not start" in screen_text(app)
    assert isinstance(feed.error, UserError)


def test_every_binding_has_an_id():
    from tui.bindings import all_bindings

    missing = [(context, b.key) for context, b in all_bindings() if not b.id]
    assert missing == []


async def test_a_wider_terminal_shows_duration_and_reason_columns():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "reason" not in screen_text(app).splitlines()[1]
        await pilot.resize_terminal(130, 30)
        await settle(app, pilot)
        header = screen_text(app).splitlines()[1]
        assert "dur" in header and "reason" in header
        assert "rule amplification; detector p" in screen_text(app)


def test_watch_and_demo_report_config_errors_before_the_ui_opens(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    bad = tmp_path / "bad.toml"
    bad.write_text('[tui]\ntheme = "no-such-theme"\n[keys]\nsort_nowhere = "z"\n')
    for argv in (["watch", str(tmp_path)], ["demo"]):
        proc = subprocess.run([sys.executable, "-m", "engine", *argv, "--config", str(bad)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "not a theme" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "engine", "demo", "--model", str(tmp_path / "none.skops")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no such model file" in proc.stderr, proc.stderr
