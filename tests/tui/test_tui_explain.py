"""The drill-down explains a flow from what was computed when it was scored (issue 15): over a
real multi-rotation replay with the bundled model, no fake explainer. Every retained flow keeps
the probabilities its verdict came from and the features that drove it; Enter/Enter reaches a
flow whose detail shows its row's verdict, and an old flow's features are never recomputed
on less context."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from engine.config.settings import Config
from engine.core.schema import ANOMALY, NORMAL
from engine.live.pipeline import Pipeline
from engine.models.registry import load_scorer
from tests.conftest import ROOT
from tests.tui_support import screen_text, widget_text
from tui.app import FlowTriageApp
from tui.feed import StartingPipeline
from tui.screens.drilldown import FlowScreen
from tui.screens.incidents import IncidentFlowsScreen, IncidentsScreen

DUMPS = sorted((ROOT / "data/samples/lab-mixed-dev/routerlike").glob("nfcapd.*"))[:3]


async def settle(app, pilot) -> None:
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot, condition, tries: int = 3000) -> None:
    for _ in range(tries):
        await pilot.pause(0.02)
        if condition():
            return
    raise AssertionError("condition never held")


@pytest.fixture
def replay(tmp_path):
    directory = tmp_path / "dumps"
    directory.mkdir()
    for dump in DUMPS:  # three rotations, read in order, window context carried across
        shutil.copy(dump, directory / dump.name)
    config = Config()
    config = dataclasses.replace(config, watch=dataclasses.replace(
        config.watch, state_db=str(tmp_path / "state.sqlite"), settle_seconds=0.2, poll_interval=0.1))
    scorer = load_scorer(config)

    def build():
        return Pipeline(directory, config, scorer, from_start=True), scorer

    return FlowTriageApp(StartingPipeline(build), config, subtitle="replay", start="incidents")


async def test_every_retained_flow_keeps_the_evidence_of_its_own_verdict(replay):
    app = replay
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.counters.files == len(DUMPS)
                    and app.feed.pipeline.tailer.backlog_since is None and app.snapshot.flows.height > 0)
        await settle(app, pilot)
        flows = app.snapshot.flows
        assert flows["file"].n_unique() == len(DUMPS)  # retained flows from every rotation
        assert flows["why"].null_count() == 0
        for verdict, why in flows.select("verdict", "why").iter_rows():
            chances = json.loads(why)["p"]
            attacks = {c: p for c, p in chances.items() if c != NORMAL}
            if verdict not in (NORMAL, ANOMALY):
                # the verdict is the likeliest attack of the probabilities kept at scoring time
                assert verdict == max(attacks, key=attacks.get), (verdict, chances)
            assert len(json.loads(why)["d"]) == 3

        # Enter/Enter from the incidents: the detail shows the row's own verdict
        assert isinstance(app.screen, IncidentsScreen)
        incidents = app.snapshot.incidents
        for index in range(min(incidents.height, 6)):
            app.screen.table.move_cursor(index)
            await pilot.press("enter")
            await settle(app, pilot)
            assert isinstance(app.screen, IncidentFlowsScreen)
            row = app.screen.table.cursor_row
            await pilot.press("enter")
            await settle(app, pilot)
            assert isinstance(app.screen, FlowScreen)
            why = widget_text(app.screen.query_one("#why"))
            assert why.splitlines()[1].strip().startswith(f"{row['verdict']}, score")
            assert "as scored" in why and "as scored" in screen_text(app)
            explain = widget_text(app.screen.query_one("#explain"))
            if not app.models.in_context(app.screen.row):  # older than the context kept
                assert "not shown" in explain and "verdict" not in explain.split("not shown")[0]
            await pilot.press("q", "q")
            await settle(app, pilot)
