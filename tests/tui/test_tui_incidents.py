"""The incidents screen (the main screen of watch and demo) at 80x24: incidents most severe
and most recent first, Enter shows an incident's flows, Enter again one flow (issue 15)."""

from __future__ import annotations

import polars as pl

from engine.config.settings import Config
from tests.tui_support import make_snapshot, screen_text, with_incidents
from tui.app import FlowTriageApp
from tui.feed import SnapshotFeed
from tui.screens.drilldown import FlowScreen
from tui.screens.incidents import IncidentFlowsScreen, IncidentsScreen


async def settle(app, pilot) -> None:
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


def make_app(snapshot=None) -> tuple[FlowTriageApp, SnapshotFeed]:
    feed = SnapshotFeed(snapshot or with_incidents(make_snapshot()))
    return FlowTriageApp(feed, Config(), subtitle="watching /dumps", start="incidents"), feed


async def test_the_main_screen_lists_incidents_and_enter_enter_reaches_a_flow():
    app, feed = make_app()
    incidents = feed.latest.incidents
    assert incidents.height > 0
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, IncidentsScreen)
        view = app.screen.table.view
        assert [r["incident"] for r in view.rows(0, len(view))] == incidents["incident"].to_list()
        text = screen_text(app)
        assert f"{incidents.height}/{incidents.height} incidents" in text
        top = incidents.row(0, named=True)
        assert top["class"] in text and top["summary"][:20] in text
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, IncidentFlowsScreen)
        view = app.screen.table.view
        rows = view.rows(0, len(view))
        expected = feed.latest.flows.filter(pl.col("incident") == top["incident"]).height
        assert len(rows) == expected == top["flows"] and {r["incident"] for r in rows} == {top["incident"]}
        assert f"{expected}/{expected} flows of {top['class']}" in screen_text(app)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, FlowScreen) and app.screen.row["incident"] == top["incident"]
        await pilot.press("q")
        await settle(app, pilot)
        assert isinstance(app.screen, IncidentFlowsScreen)
        await pilot.press("q")
        await settle(app, pilot)
        assert isinstance(app.screen, IncidentsScreen)


async def test_a_new_incident_shows_at_the_top_without_a_key():
    app, feed = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        first = app.screen.table.cursor_row["incident"]
        # a newer rotation: a fresh incident ranks first (open, highest score, latest)
        import dataclasses
        from datetime import timedelta

        flows = feed.latest.flows
        newer = flows.head(5).with_columns(
            ts_first=pl.col("ts_first") + timedelta(minutes=30), ts_last=pl.col("ts_last") + timedelta(minutes=30),
            src_addr=pl.lit("127.10.99.99"), dst_addr=pl.lit("127.10.0.53"), src_port=pl.lit(40000, pl.Int32),
            dst_port=pl.lit(53, pl.Int32), verdict=pl.lit("tunnel"), score=pl.lit(1.0),
            flow_id=pl.int_range(1000, 1005, dtype=pl.UInt64),
        ).drop("incident")
        snapshot = with_incidents(dataclasses.replace(feed.latest, version=2, flows=pl.concat([flows.drop("incident"), newer])))
        feed.publish(snapshot)
        app.apply_latest()
        await settle(app, pilot)
        top = app.screen.table.cursor_row
        assert top["incident"] != first and "127.10.99.99" in top["summary"]
        assert app.screen.table.cursor == 0


async def test_find_selects_incidents_by_class_or_address():
    app, feed = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"scan", "enter")
        await settle(app, pilot)
        view = app.screen.table.view
        classes = {r["class"] for r in view.rows(0, len(view))}
        assert classes == {"scan"}
