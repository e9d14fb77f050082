"""The feedback keys at 80x24 (Textual Pilot) over a real LabelStore in tmp_path: n, l (with a
confirmed new class), u, N, and inert notes."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest
from textual.widgets import Input, OptionList

from engine.config.settings import Config
from engine.feedback.labelstore import LabelStore
from engine.feedback.suppress import Feedback
from tests.conftest import FIXTURES
from tests.tui_support import make_flows, make_snapshot, screen_text, terminal_output
from tui.app import FlowTriageApp
from tui.feed import SnapshotFeed
from tui.feedback import Confirm, LabelPicker, NoteInput
from tui.screens.drilldown import FlowScreen
from tui.screens.flows import FlowsScreen


def labels_config(tmp_path) -> Config:
    config = Config()
    labels = dataclasses.replace(
        config.labels, db=str(tmp_path / "labels.sqlite"), model_dir=str(tmp_path / "models")
    )
    return dataclasses.replace(config, labels=labels)


@pytest.fixture
def setup(tmp_path):
    config = labels_config(tmp_path)
    feedback = Feedback.from_config(config)
    # as the pipeline publishes them: vector keys attached, the model's output kept aside
    snapshot = make_snapshot(feedback.apply(make_flows()))
    feed = SnapshotFeed(snapshot)
    app = FlowTriageApp(feed, config, subtitle="watching /dumps", feedback=feedback)
    yield app, feedback, config
    feedback.store.close()


async def until(pilot, condition, tries: int = 400) -> None:
    """Let the app run until `condition()` holds (label writes run on their own thread)."""
    for _ in range(tries):
        await pilot.pause(0.01)
        if condition():
            await pilot.pause()
            return
    raise AssertionError("condition never held")


def shown_row(app, flow_id) -> dict:
    flows = app.snapshot.flows
    return flows.filter(pl.col("flow_id") == flow_id).row(0, named=True)


def store_events(config) -> pl.DataFrame:
    with LabelStore.from_config(config) as store:  # a second connection, as another process
        return store.events()


async def first_flagged(app, pilot) -> dict:
    await until(pilot, lambda: len(app.screen.table.view) == 60)
    row = app.screen.table.cursor_row
    assert row["score"] >= 0.5 and row["verdict"] != "normal"
    return row


async def test_n_marks_the_flow_normal_at_once_and_u_undoes_it(setup):
    app, _, config = setup
    async with app.run_test(size=(80, 24)) as pilot:
        row = await first_flagged(app, pilot)
        model_verdict = row["verdict"]
        await pilot.press("n")
        await until(pilot, lambda: shown_row(app, row["flow_id"])["verdict"] == "normal")
        shown = shown_row(app, row["flow_id"])
        assert shown["reasons"].endswith("analyst:normal") and shown["score"] < 0.05
        assert "saved: normal (vector)" in screen_text(app)
        events = store_events(config)
        assert events.select("kind", "label", "scope", "verdict").row(0) == (
            "label", "normal", "vector", model_verdict
        )
        assert events["file"][0] == "nfcapd.202611220837.txt" and events["line"][0] == row["line"]

        await pilot.press("u")
        await until(pilot, lambda: shown_row(app, row["flow_id"])["verdict"] == model_verdict)
        shown = shown_row(app, row["flow_id"])
        assert shown["score"] == row["score"] and "analyst:" not in shown["reasons"]
        events = store_events(config)
        assert events["kind"].to_list() == ["label", "undo"]
        assert events["target"][1] == events["id"][0]
        assert isinstance(app.screen, FlowsScreen)


async def test_l_picks_a_class_from_the_vocabulary(setup):
    app, feedback, config = setup
    async with app.run_test(size=(80, 24)) as pilot:
        row = await first_flagged(app, pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LabelPicker))
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "anomaly" not in ids and "normal" in ids and "tunnel" in ids
        options.highlighted = ids.index("tunnel")
        await pilot.press("enter")
        await until(pilot, lambda: shown_row(app, row["flow_id"])["verdict"] == "tunnel")
        assert shown_row(app, row["flow_id"])["reasons"].endswith("analyst:tunnel")
        labels = store_events(config).filter(pl.col("kind") == "label")
        assert labels.select("label", "scope").rows() == [("tunnel", "flow")]


async def test_a_new_class_needs_confirmation(setup):
    app, feedback, config = setup
    async with app.run_test(size=(80, 24)) as pilot:
        row = await first_flagged(app, pilot)
        for answer in ("n", "y"):
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LabelPicker))
            options = app.screen.query_one(OptionList)
            options.highlighted = options.option_count - 1  # "+ new class..."
            await pilot.press("enter")
            await pilot.press(*"Bad Name", "enter")  # refused in the picker, nothing written
            assert isinstance(app.screen, LabelPicker) and "lower-case" in screen_text(app)
            app.screen.query_one(Input).value = ""
            await pilot.press(*"dga_tunnel", "enter")
            await until(pilot, lambda: isinstance(app.screen, Confirm))
            assert "dga_tunnel" in screen_text(app)
            assert "dga_tunnel" not in feedback.store.vocabulary()  # not before the answer
            await pilot.press(answer)
            await until(pilot, lambda: isinstance(app.screen, FlowsScreen))
        await until(pilot, lambda: shown_row(app, row["flow_id"])["verdict"] == "dga_tunnel")
        with LabelStore.from_config(config) as store:
            assert "dga_tunnel" in store.vocabulary()
            assert store.events().filter(pl.col("kind") == "label")["label"].to_list() == ["dga_tunnel"]


async def test_N_adds_a_note_and_hostile_text_stays_inert(setup):
    app, _, config = setup
    hostile = "[@click=app.quit]boom[/] \x1b[31mred\x1b]52;c;Zm9v\x07 \u202eevil"
    async with app.run_test(size=(80, 24)) as pilot:
        row = await first_flagged(app, pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FlowScreen))
        await pilot.press("N")  # from the drill-down: the same keys
        await until(pilot, lambda: isinstance(app.screen, NoteInput))
        app.screen.query_one(Input).value = hostile
        await pilot.press("enter")
        await until(pilot, lambda: store_events(config).height == 1)
        await until(pilot, lambda: "saved: note" in screen_text(app))
        note = store_events(config).row(0, named=True)
        assert (note["kind"], note["note"], note["line"]) == ("note", hostile, row["line"])
        text = screen_text(app)
        assert "[@click=app.quit]boom" in text  # markup shown literally, not interpreted
        output = terminal_output(app)
        assert "\x1b]52" not in output and "\u202e" not in output and "\x1b[31mred" not in output
        assert app.is_running and isinstance(app.screen, FlowScreen)


async def test_n_in_the_drill_down_updates_its_why(setup):
    app, _, config = setup
    async with app.run_test(size=(80, 24)) as pilot:
        row = await first_flagged(app, pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FlowScreen))
        await pilot.press("n")
        await until(pilot, lambda: app.screen.row.get("verdict") == "normal")
        assert "analyst:normal" in screen_text(app)
        assert store_events(config)["label"].to_list() == ["normal"]
        assert store_events(config)["line"].to_list() == [row["line"]]


async def test_R_retrains_in_the_background_and_the_palette_rolls_back(tmp_path):
    """R on the live pipeline: progress in the status line, a versioned model written, the
    model swapped in when the engine accepts it; the palette lists the versions to go back to."""
    import shutil

    from engine.detect.detector import Detector
    from engine.feedback.retrain import rule_targets
    from engine.live.pipeline import Pipeline
    from engine.live.session import open_feedback as build_feedback
    from engine.models.registry import current_model
    from tests.labels_support import read_fixture
    from tui.feed import StartingPipeline

    fixtures = FIXTURES / "labels"
    names = ("nfcapd.202701110139.txt", "nfcapd.202701110140.txt")
    directory = tmp_path / "dumps"
    directory.mkdir()
    for name in names:
        shutil.copy(fixtures / name, directory / name)
    config = labels_config(tmp_path)
    config = dataclasses.replace(config, watch=dataclasses.replace(
        config.watch, state_db=str(tmp_path / "state.sqlite"), settle_seconds=0.2, poll_interval=0.1))
    flows = pl.concat([read_fixture(fixtures / n) for n in names])
    base = Detector(n_estimators=8, outlier="none", n_jobs=1).fit(flows, rule_targets(flows, config))

    def build():
        pipeline = Pipeline(directory, config, base, feedback=build_feedback(config, base.threshold, create=True))
        return pipeline, base

    app = FlowTriageApp(StartingPipeline(build), config, subtitle="watching")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.counters.flows == 400, 3000)
        await pilot.press("n")  # the top row (a rule's hit) is a false positive
        await until(pilot, lambda: app.activity.plain.startswith("saved: normal"))
        await pilot.press("R")
        await until(pilot, lambda: app.activity.plain.startswith("model-")
                    or "not swapped" in app.activity.plain or "failed" in app.activity.plain, 6000)
        said = app.activity.plain
        assert "macro-F1" in said and "re-verdicted" in said and " 0 analyst-labelled" not in said, said
        versions = app.model_versions()
        assert len(versions) == 1 and said.startswith(versions[0]) or said.startswith("not swapped")
        if not said.startswith("not swapped"):
            assert app.pipeline.scorer.version_ == versions[0] != base
            assert current_model(config.model_dir_path).stem == versions[0]
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert f"Use model {versions[0]}" in commands and "Roll back model" in commands
        app.rollback_model(versions[0])
        await until(pilot, lambda: "rolled back" in app.activity.plain, 3000)
        assert app.pipeline.scorer.version_ == versions[0]


async def test_the_picker_numbers_the_classes(setup):
    app, _, config = setup
    async with app.run_test(size=(80, 24)) as pilot:
        row = await first_flagged(app, pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LabelPicker))
        assert "5 scan" in screen_text(app)
        await pilot.press("5")
        await until(pilot, lambda: shown_row(app, row["flow_id"])["verdict"] == "scan")
        assert store_events(config)["label"].to_list() == ["scan"]


async def test_a_label_shows_while_the_view_is_paused(setup):
    app, _, config = setup
    async with app.run_test(size=(80, 24)) as pilot:
        row = await first_flagged(app, pilot)
        await pilot.press("p")
        assert app.paused
        await pilot.press("n")
        await until(pilot, lambda: shown_row(app, row["flow_id"])["verdict"] == "normal")
        assert app.paused and "PAUSED" in screen_text(app)
        assert store_events(config)["label"].to_list() == ["normal"]


async def test_help_lists_the_feedback_keys_with_their_ids(setup):
    from tui.bindings import binding_ids
    from tui.screens.help import HelpScreen

    assert {"label_normal", "label_pick", "label_undo", "label_note", "retrain", "modal_cancel"} <= binding_ids()
    app, _, _ = setup
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        ids = {row[3] for row in app.screen.rows}
        assert {"label_normal", "label_pick", "label_undo", "label_note", "retrain"} <= ids


async def test_n_on_an_incident_labels_all_its_flows_after_saying_how_many(tmp_path):
    from tests.tui_support import with_incidents
    from tui.screens.incidents import IncidentsScreen

    config = labels_config(tmp_path)
    feedback = Feedback.from_config(config)
    snapshot = with_incidents(make_snapshot(feedback.apply(make_flows())))
    app = FlowTriageApp(SnapshotFeed(snapshot), config, subtitle="watching /dumps", feedback=feedback,
                        start="incidents")
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, IncidentsScreen) and len(app.screen.table.view))
            incident = app.screen.table.cursor_row
            members = snapshot.flows.filter(pl.col("incident") == incident["incident"])
            assert members.height == incident["flows"] > 1
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, Confirm))
            assert f"Label the {members.height} retained flows of this incident" in screen_text(app)
            await pilot.press("y")
            await until(pilot, lambda: app.activity.plain.startswith("saved: normal on"))
            assert f"on {members.height} flows of incident {incident['incident']}" in app.activity.plain
            await until(pilot, lambda: all(shown_row(app, f)["verdict"] == "normal" for f in members["flow_id"]))
            events = store_events(config)
            assert events.height == members.height and set(events["label"]) == {"normal"}
    finally:
        feedback.store.close()
