"""FlowTriageApp: the triage TUI over engine snapshots (tui.launch starts it for a session).

Snapshots arrive on the pipeline's thread; the callback only stores a reference. A timer on the
UI thread applies the newest one at most `config.tui.refresh_hz` times a second (so bursts of
rotations coalesce), unless the view is paused, in which case it only counts what it skipped.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.message import Message
from textual.screen import Screen
from textual.theme import BUILTIN_THEMES

from engine.config.settings import Config
from engine.core.dumpfiles import list_dumps
from engine.core.errors import UserError
from engine.core.sanitize import sanitize
from engine.core.schema import ANOMALY
from engine.detect.rules import RuleSet
from engine.live.snapshot import Snapshot
from engine.models.registry import rollback
from engine.models.store import list_versions
from tui import format as fmt
from tui import keys
from tui.bindings import check_keymap
from tui.feed import StartingPipeline
from tui.feedback import Confirm, LabelPicker, NoteInput
from tui.nfdump import is_address
from tui.screens.drilldown import Explainer, FlowScreen
from tui.screens.flows import FlowsScreen
from tui.screens.help import HelpScreen
from tui.screens.messages import MessagesScreen
from tui.screens.sources import SourcesScreen
from tui.screens.table_screen import TableScreen


def check_tui_config(config: Config) -> dict[str, str]:
    """Refuse a [tui] theme or a [keys] binding id that does not exist (before any pipeline
    starts); returns the keymap to apply."""
    if config.tui.theme not in BUILTIN_THEMES:
        raise UserError(
            f"[tui] theme {config.tui.theme!r} is not a theme; choose one of {', '.join(sorted(BUILTIN_THEMES))}"
        )
    if config.tui.refresh_hz <= 0:
        raise UserError(f"[tui] refresh_hz must be positive, got {config.tui.refresh_hz}")
    return check_keymap(dict(config.keys))


class Feed(Protocol):
    """What the app needs from engine.live.pipeline.Pipeline (and tui.feed.SnapshotFeed)."""

    latest: Snapshot | None

    def subscribe(self, callback: Any) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Saved(Message):
    """A label store write finished (or failed); `text` is for the analyst."""

    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error


class Reapplied(Message):
    """Labels were applied again: show the newest snapshot now, or (paused) `paused_view`, the
    snapshot on screen with the labels applied, so the analyst sees the label while paused."""

    def __init__(self, paused_view: Snapshot | None = None) -> None:
        super().__init__()
        self.paused_view = paused_view


class Activity(Message):
    """Progress of a background job (retraining) for the status line."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class FlowTriageApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "flowtriage"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = keys.APP

    def __init__(
        self,
        feed: Feed,
        config: Config,
        *,
        subtitle: str = "",
        explainer: Explainer | None = None,
        nfcapd_dir: str = "",
        feedback: Any = None,
    ) -> None:
        super().__init__()
        self.animation_level = "none"  # animations cost bytes over SSH and time in tests
        self.feed = feed
        self.config = config
        self.subtitle = subtitle
        self.explainer = explainer
        self.nfcapd_dir = nfcapd_dir or config.tui.nfcapd_dir
        self.snapshot: Snapshot | None = None  # the one on screen
        self._incoming: Snapshot | None = feed.latest  # the newest published
        self.paused = False
        self._told_error = False
        self._user_keymap = check_tui_config(config)
        # engine.feedback.suppress.Feedback: given (tests), else the started pipeline's.
        self._feedback = feedback
        # Label store writes, one at a time and in key order, off the UI thread.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowtriage-labels")
        self.activity = Text()  # the status line's first item: saved / retraining / errors

    # ---- lifecycle ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self.theme = self.config.tui.theme
        if self._user_keymap:
            self.set_keymap(self._user_keymap)
        self.push_screen(FlowsScreen())
        self.feed.subscribe(self._published)
        hz = max(0.1, self.config.tui.refresh_hz)
        self.set_interval(1.0 / hz, self.apply_latest, name="refresh")
        self.feed.start()
        self.apply_latest()

    def on_unmount(self) -> None:
        self._writer.shutdown(wait=True)  # a label being written is on disk before we exit
        self.feed.stop()
        feedback = getattr(self.pipeline, "feedback", None)
        if feedback is not None:  # the pipeline's store; one given to the app is the giver's
            feedback.store.close()

    def _published(self, snapshot: Snapshot) -> None:
        # Runs on the pipeline's thread: only swap a reference (atomic), never touch widgets.
        self._incoming = snapshot

    @property
    def updates_behind(self) -> int:
        if self._incoming is None or self.snapshot is None:
            return 0
        return max(0, self._incoming.version - self.snapshot.version)

    def apply_latest(self) -> None:
        """Show the newest snapshot, if any arrived and the view is not paused."""
        if self.feed_error and not self._told_error:
            self._told_error = True
            self.notify(f"The pipeline stopped: {self.feed_error} (m: messages)", severity="error",
                        timeout=30, markup=False)
            self._refresh_chrome()
        incoming = self._incoming
        if incoming is None or incoming is self.snapshot:
            return
        if self.paused:
            self._refresh_chrome()
            return
        self.snapshot = incoming
        for screen in self.screen_stack:
            if isinstance(screen, TableScreen | FlowScreen) and screen.is_mounted:
                screen.show_snapshot(incoming)

    def _refresh_chrome(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, TableScreen | FlowScreen) and screen.is_mounted:
                screen.view_changed()

    # ---- shared pieces -----------------------------------------------------------------

    def status_text(self) -> Text:
        counters = self.snapshot.counters if self.snapshot else None
        incoming = self._incoming.counters if self._incoming else counters
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.feed_error:
            text.append(" STOPPED ", style="bold reverse red")
        if counters is None:
            text.append(" no data yet", style="dim")
            return text
        shown = incoming if incoming is not None else counters

        def item(label: str, value: str, style: str = "", *, after: bool = False) -> None:
            if len(text):
                text.append("  ")
            if not after:
                text.append(f"{label} ", style="dim")
            text.append(value, style=style or "bold")
            if after:
                text.append(f" {label}", style="dim")

        text.append(" ")
        if self.activity:
            text.append_text(self.activity)
            text.append("  ")
        item("files", f"{shown.files:,}", after=True)
        item("lag", f"{fmt.duration(shown.lag_seconds).rstrip('s')}s")
        item("fl/s", fmt.compact(shown.flows_per_second), after=True)
        item("flagged", f"{shown.flagged:,}", "bold red" if shown.flagged else "", after=True)
        item("skip", f"{shown.skipped_lines:,}", "bold yellow" if shown.skipped_lines else "", after=True)
        item("err", f"{shown.errors:,}", "bold red" if shown.errors else "", after=True)
        item("model", sanitize(shown.model_version) or "-")
        text.append("  ")
        text.append(sanitize(Path(shown.newest_file).name) if shown.newest_file else "", style="dim")
        return text

    def set_activity(self, text: str, style: str = "bold") -> None:
        self.activity = Text(sanitize(text), style=style)
        self._refresh_chrome()

    def copy_address(self, value: object) -> None:
        if not is_address(value):
            self.notify(f"Not an IP address, not copied: {sanitize(value)}", severity="warning", markup=False)
            return
        self.copy_to_clipboard(str(value))
        self.notify(f"Copied {value}", markup=False, timeout=2)

    @property
    def flows_screen(self) -> FlowsScreen:
        return next(s for s in self.screen_stack if isinstance(s, FlowsScreen))

    def show_flow(self, row: dict) -> None:
        self.push_screen(FlowScreen(row, self.snapshot))

    def show_flows_matching(self, filter_text: str) -> None:
        while not isinstance(self.screen, FlowsScreen) and len(self.screen_stack) > 2:
            self.pop_screen()
        self.flows_screen.apply_filter(filter_text)

    # ---- analysts' feedback ------------------------------------------------------------

    @property
    def pipeline(self) -> Any:
        return getattr(self.feed, "pipeline", None)

    def current_feedback(self) -> Any:
        if self._feedback is None and self.pipeline is not None:
            self._feedback = getattr(self.pipeline, "feedback", None)
        return self._feedback

    def model_version(self) -> str | None:
        scorer = getattr(self.feed, "scorer", None) or getattr(self.pipeline, "scorer", None)
        return getattr(scorer, "version_", None) if scorer is not None else None

    def full_row(self, row: dict | None) -> dict | None:
        """The snapshot's whole row for a table row (the table keeps only what it shows; a
        label needs the flow key, provenance, vector key and the model's own verdict)."""
        if row is None:
            return None
        flows = self.snapshot.flows if self.snapshot is not None else None
        if flows is not None and "flow_id" in flows.columns and row.get("flow_id") is not None:
            found = flows.filter(pl.col("flow_id") == row["flow_id"])
            if found.height:
                return found.row(0, named=True)
        return {k: v for k, v in row.items() if not k.startswith("_")}

    def _feedback_for(self, row: dict | None = None, *, need_row: bool = True) -> Any:
        feedback = self.current_feedback()
        if feedback is None:
            self.notify("Labels are not available yet (the pipeline is starting)", severity="warning", markup=False)
        elif need_row and row is None:
            self.notify("No flow under the cursor", severity="warning", markup=False)
            return None
        return feedback

    def _submit(self, write: Callable[[], str]) -> None:
        """Run `write` (a label store append returning what to say) on the writer thread; the
        UI says it only after the append returned, then the labels are applied again."""

        def job() -> None:
            try:
                said = write()
            except Exception as exc:  # noqa: BLE001 - a refused label is the analyst's to fix
                self.post_message(Saved(f"not saved: {exc}", error=True))
                return
            self.post_message(Saved(said))
            try:
                self._reapply()
                shown = self.snapshot
                paused_view = None
                if self.paused and shown is not None:
                    flows = self.current_feedback().apply(shown.flows)
                    paused_view = dataclasses.replace(shown, flows=flows)
            except Exception as exc:  # noqa: BLE001
                self.post_message(Saved(f"saved, but not re-applied: {exc}", error=True))
                return
            self.post_message(Reapplied(paused_view))

        self._writer.submit(job)

    def _reapply(self) -> None:
        """Apply the labels again to the flows on screen (writer thread)."""
        pipeline = self.pipeline
        if pipeline is not None and hasattr(pipeline, "reapply_feedback"):
            pipeline.reapply_feedback()
            return
        latest = self.feed.latest
        publish = getattr(self.feed, "publish", None)
        if latest is None or publish is None:
            return
        flows = self.current_feedback().apply(latest.flows)
        publish(Snapshot(latest.version + 1, flows, latest.sources, latest.counters, latest.messages))

    def label_flow(self, row: dict | None, label: str) -> None:
        """`n` (label "normal") and `l`'s choice: durable before the UI says "saved"."""
        feedback = self._feedback_for(row)
        if feedback is None:
            return
        full, version = self.full_row(row), self.model_version()
        self.set_activity(f"saving {label}…", "bold yellow")

        def write() -> str:
            event = feedback.label(full, label, model_version=version)
            return f"saved: {label} ({event.scope}) #{event.id}"

        self._submit(write)

    def pick_label(self, row: dict | None) -> None:
        """`l`: the vocabulary in a picker; a new class is confirmed before it is added."""
        feedback = self._feedback_for(row)
        if feedback is None:
            return
        classes = [c for c in feedback.store.vocabulary() if c != ANOMALY]
        full = self.full_row(row)
        what = f"{full.get('src_addr')}:{full.get('src_port')} → {full.get('dst_addr')}:{full.get('dst_port')}"

        def chosen(answer: Any) -> None:
            if answer is None:
                return
            if isinstance(answer, tuple):
                name = answer[1]

                def confirmed(yes: bool | None) -> None:
                    if yes:
                        self._add_class_and_label(feedback, full, name)

                self.push_screen(Confirm(
                    f"Add the class '{name}' to the vocabulary of {feedback.store.path.name} "
                    "(every analyst of this store sees it) and label the flow with it?"
                ), confirmed)
                return
            self.label_flow(full, answer)

        self.push_screen(LabelPicker(classes, sanitize(what)), chosen)

    def _add_class_and_label(self, feedback: Any, full: dict, name: str) -> None:
        version = self.model_version()
        self.set_activity(f"saving {name}…", "bold yellow")

        def write() -> str:
            feedback.store.add_class(name)
            event = feedback.label(full, name, model_version=version)
            return f"saved: new class {name}; {name} ({event.scope}) #{event.id}"

        self._submit(write)

    def undo_label(self) -> None:
        """`u`: this analyst's latest label or note is cancelled (an undo event)."""
        feedback = self._feedback_for(need_row=False)
        if feedback is None:
            return

        def write() -> str:
            event = feedback.undo()
            return "nothing to undo" if event is None else f"saved: undid #{event.target}"

        self._submit(write)

    def note_flow(self, row: dict | None) -> None:
        """`N`: a note on the flow (stored as typed, always shown inert)."""
        feedback = self._feedback_for(row)
        if feedback is None:
            return
        full = self.full_row(row)

        def typed(text: str | None) -> None:
            if not text:
                return

            def write() -> str:
                event = feedback.note(full, text)
                return f"saved: note #{event.id}: {text}"

            self._submit(write)

        self.push_screen(NoteInput(sanitize(f"{full.get('src_addr')} → {full.get('dst_addr')}")), typed)

    def on_saved(self, message: Saved) -> None:
        self.set_activity(message.text, "bold red" if message.error else "bold green")
        self.notify(sanitize(message.text), severity="error" if message.error else "information",
                    timeout=4, markup=False)

    def on_reapplied(self, message: Reapplied) -> None:
        if self.paused and message.paused_view is not None:
            self.snapshot = message.paused_view  # same version: "+N behind" stays right
            for screen in self.screen_stack:
                if isinstance(screen, TableScreen | FlowScreen) and screen.is_mounted:
                    screen.show_snapshot(message.paused_view)
        self.apply_latest()

    def on_activity(self, message: Activity) -> None:
        self.set_activity(message.text, "bold yellow")

    # ---- retraining and rollback -------------------------------------------------------

    def action_retrain(self) -> None:
        feedback = self._feedback_for(need_row=False)
        if feedback is None:
            return
        if self.pipeline is None:
            self.notify("Retraining needs the live pipeline", severity="warning", markup=False)
            return
        self.set_activity("retraining…", "bold yellow")
        self._retrain(feedback)

    @work(thread=True, exclusive=True, exit_on_error=False, group="retrain", description="retrain")
    def _retrain(self, feedback: Any) -> None:
        # Late (start-up time): retraining imports scikit-learn, which `watch --rules-only`
        # otherwise never loads.
        from engine.feedback.retrain import retrain

        pipeline = self.pipeline
        config = self.config
        dumps = list_dumps(pipeline.directory, config.watch.glob, recursive=config.watch.recursive)
        if not dumps:
            self.post_message(Saved("retrain: no dumps in the watched directory", error=True))
            return
        base = pipeline.scorer
        base = base if hasattr(base, "fit") else None  # rules-only: a first model

        def progress(stage: str, fraction: float) -> None:
            self.post_message(Activity(f"retraining on {len(dumps)} dumps: {stage} {fraction:.0%}"))

        try:
            result = retrain(dumps, feedback.store, base, config, progress=progress)
        except Exception as exc:  # noqa: BLE001 - shown, the old model keeps running
            self.post_message(Saved(f"retrain failed: {exc}", error=True))
            return
        if result.accepted:
            self._swap_model(result.detector)
        self.post_message(Saved(("" if result.accepted else "not swapped: ") + result.summary(),
                                error=False))

    def _swap_model(self, model: Any) -> None:
        """Hot-swap the scorer (worker thread): later batches use it, the drill-down explains
        with it, the status line names it."""
        pipeline = self.pipeline
        pipeline.set_scorer(model)
        if isinstance(self.feed, StartingPipeline):
            self.feed.scorer = model
        self.explainer = None
        self._reapply()
        self.post_message(Reapplied())

    def rollback_model(self, version: str | None = None) -> None:
        if self.pipeline is None:
            self.notify("Rollback needs the live pipeline", severity="warning", markup=False)
            return
        self._rollback(version)

    @work(thread=True, exclusive=True, exit_on_error=False, group="retrain", description="rollback")
    def _rollback(self, version: str | None) -> None:
        try:
            path, model = rollback(self.config.model_dir_path, version)
        except Exception as exc:  # noqa: BLE001
            self.post_message(Saved(f"rollback failed: {exc}", error=True))
            return
        try:
            model.version_ = path.stem
        except AttributeError:
            pass
        self._swap_model(model)
        self.post_message(Saved(f"model {path.stem} is current (rolled back)"))

    def model_versions(self) -> list[str]:
        try:
            return [v.path.stem for v in list_versions(self.config.model_dir_path)]
        except OSError:
            return []

    # ---- actions -----------------------------------------------------------------------

    def action_show_sources(self) -> None:
        if not isinstance(self.screen, SourcesScreen):
            self.push_screen(SourcesScreen())

    def action_messages(self) -> None:
        if not isinstance(self.screen, MessagesScreen):
            latest = self._incoming or self.snapshot
            self.push_screen(MessagesScreen(latest.messages if latest else (), self.feed_error))

    def current_explainer(self) -> Explainer | None:
        """The explainer given, else the started pipeline's scorer's (known once it loaded)."""
        if self.explainer is not None:
            return self.explainer
        if isinstance(self.feed, StartingPipeline) and self.feed.scorer is not None:
            self.explainer = explainer_of(self.feed.scorer, self.config, self.feed.pipeline)
        return self.explainer

    @property
    def feed_status(self) -> str:
        return getattr(self.feed, "status", "") or ""

    @property
    def feed_error(self) -> str | None:
        error = getattr(self.feed, "error", None)
        return f"{type(error).__name__}: {error}" if error is not None else None

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self._refresh_chrome()
        else:
            self.apply_latest()
            self._refresh_chrome()
        self.notify("Paused: updates are counted, not shown" if self.paused else "Live", timeout=2, markup=False)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if isinstance(screen, TableScreen):
            yield SystemCommand("Filter", "Filter the rows (nfdump syntax on flows)", screen.action_filter)
            yield SystemCommand("Clear filter", "Show every row again", screen.action_clear_filter)
            yield SystemCommand("Reverse sort", "Sort the other way", screen.action_sort_reverse)
            for col in screen.COLUMNS:
                yield SystemCommand(
                    f"Sort by {col.header.strip()}", f"Order rows by {col.key} (again: reverse)",
                    lambda key=col.key: screen.action_sort(key),
                )
        if isinstance(screen, FlowsScreen):
            yield SystemCommand("Open flow", "Drill down into the selected flow", screen.table.action_activate)
            yield SystemCommand("Follow", "Keep the cursor on the top row as flows arrive", screen.action_toggle_follow)
            yield SystemCommand("Sources", "Per-source summaries", self.action_show_sources)
            yield SystemCommand("Copy source address", "OSC 52 clipboard", lambda: screen.action_copy("src_addr"))
            yield SystemCommand("Copy destination address", "OSC 52 clipboard", lambda: screen.action_copy("dst_addr"))
        if isinstance(screen, FlowScreen):
            yield SystemCommand("Copy nfdump command", "nfdump -R DIR -t WINDOW 'FILTER'", screen.action_copy_command)
            yield SystemCommand("Back", "Back to the table", screen.action_back)
        if isinstance(screen, FlowsScreen | FlowScreen):
            yield SystemCommand("Mark normal", "The flow is a false positive (n)", screen.action_label_normal)
            yield SystemCommand("Label flow", "Label the flow with a class, or a new one (l)", screen.action_label_pick)
            yield SystemCommand("Note", "Add a note to the flow (N)", screen.action_label_note)
        yield SystemCommand("Undo label", "Undo your last label or note (u)", self.undo_label)
        yield SystemCommand("Retrain", "Retrain on rule + analyst labels; swap in if not worse (R)", self.action_retrain)
        yield SystemCommand("Roll back model", "Make the previous model version current", self.rollback_model)
        for version in reversed(self.model_versions()):
            yield SystemCommand(f"Use model {version}", "Make this model version current (rollback)",
                                lambda v=version: self.rollback_model(v))
        yield SystemCommand("Pause / resume", "Freeze the view; updates keep counting", self.action_toggle_pause)
        yield SystemCommand("Messages", "Recent skipped lines and read errors", self.action_messages)
        yield SystemCommand("Help", "Every key and its id", self.action_help)
        yield from super().get_system_commands(screen)


def explainer_of(scorer: Any, config: Config | None = None, pipeline: Any = None) -> Explainer | None:
    """The detector's explain() when the scorer has one (the seam to engine.detect.detector.Detector).

    Window context needs the flows that came before, not only the retained (flagged) ones: a
    pipeline that exposes `history` (recent flows) provides it; otherwise the retained flows do.
    Rules fired are computed when explain() accepts a RuleSet.
    """
    explain = getattr(scorer, "explain", None)
    if explain is None:
        return None
    extra: dict[str, Any] = {}
    if config is not None and "rules" in inspect.signature(explain).parameters:
        extra["rules"] = RuleSet.from_config(config.rules)

    def explainer(flows, retained):
        history = getattr(pipeline, "history", None) if pipeline is not None else None
        return explain(flows, history=history if history is not None else retained, **extra)

    return explainer
