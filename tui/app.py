"""FlowTriageApp: the triage TUI over engine snapshots, and the entry points for
`flowtriage watch DIR` and `flowtriage demo`.

Snapshots arrive on the pipeline's thread; the callback only stores a reference. A timer on the
UI thread applies the newest one at most `config.tui.refresh_hz` times a second (so bursts of
rotations coalesce), unless the view is paused, in which case it only counts what it skipped.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from rich.text import Text
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from engine.config import Config
from engine.errors import UserError
from engine.sanitize import sanitize
from engine.snapshot import Snapshot
from tui import format as fmt
from tui.feed import StartingPipeline
from tui.nfdump import is_address
from tui.screens.drilldown import Explainer, FlowScreen
from tui.screens.flows import FlowsScreen
from tui.screens.help import HelpScreen
from tui.screens.sources import SourcesScreen
from tui.screens.table_screen import TableScreen


def check_tui_config(config: Config) -> dict[str, str]:
    """Refuse a [tui] theme or a [keys] binding id that does not exist (before any pipeline
    starts); returns the keymap to apply."""
    from textual.theme import BUILTIN_THEMES

    from tui.bindings import check_keymap

    if config.tui.theme not in BUILTIN_THEMES:
        raise UserError(
            f"[tui] theme {config.tui.theme!r} is not a theme; choose one of {', '.join(sorted(BUILTIN_THEMES))}"
        )
    if config.tui.refresh_hz <= 0:
        raise UserError(f"[tui] refresh_hz must be positive, got {config.tui.refresh_hz}")
    return check_keymap(dict(config.keys))


def check_model_path(config: Config, args: Any) -> None:
    """A model file that does not exist is reported before the UI opens (loading it, which
    takes seconds, happens behind the UI)."""
    path = getattr(args, "model", None) or config.model.path
    if path and not Path(path).is_file():
        raise UserError(f"{path}: no such model file")


class Feed(Protocol):
    """What the app needs from engine.pipeline.Pipeline (and tui.feed.SnapshotFeed)."""

    latest: Snapshot | None

    def subscribe(self, callback: Any) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class FlowTriageApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "flowtriage"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q,ctrl+c", "quit", "Quit", show=False, priority=True, id="quit_now"),
        Binding("question_mark", "help", "Help", tooltip="Every key, its action and its id", id="help"),
        Binding("f1", "help", "Help", show=False, tooltip="Every key, its action and its id", id="help_f1"),
        Binding("p,space", "toggle_pause", "Pause", tooltip="Freeze the view; updates keep counting", id="pause"),
        Binding("m", "messages", "Messages", show=False, tooltip="Recent skipped lines and read errors", id="messages"),
    ]

    def __init__(
        self,
        feed: Feed,
        config: Config,
        *,
        subtitle: str = "",
        explainer: Explainer | None = None,
        nfcapd_dir: str = "",
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
        self.feed.stop()

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
            if isinstance(screen, TableScreen) and screen.is_mounted:
                screen.show_snapshot(incoming)

    def _refresh_chrome(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, TableScreen) and screen.is_mounted:
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

    # ---- actions -----------------------------------------------------------------------

    def action_show_sources(self) -> None:
        if not isinstance(self.screen, SourcesScreen):
            self.push_screen(SourcesScreen())

    def action_messages(self) -> None:
        from tui.screens.messages import MessagesScreen

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
        yield SystemCommand("Pause / resume", "Freeze the view; updates keep counting", self.action_toggle_pause)
        yield SystemCommand("Messages", "Recent skipped lines and read errors", self.action_messages)
        yield SystemCommand("Help", "Every key and its id", self.action_help)
        yield from super().get_system_commands(screen)


# ---- entry points --------------------------------------------------------------------------


def explainer_of(scorer: Any, config: Config | None = None, pipeline: Any = None) -> Explainer | None:
    """The detector's explain() when the scorer has one (the seam to engine.detect.Detector).

    Window context needs the flows that came before, not only the retained (flagged) ones: a
    pipeline that exposes `history` (recent flows) provides it; otherwise the retained flows do.
    Rules fired are computed when explain() accepts a RuleSet.
    """
    explain = getattr(scorer, "explain", None)
    if explain is None:
        return None
    extra: dict[str, Any] = {}
    if config is not None and "rules" in inspect.signature(explain).parameters:
        try:
            from engine.rules import RuleSet

            extra["rules"] = RuleSet.from_config(config.rules)
        except ImportError:
            pass

    def explainer(flows, retained):
        history = getattr(pipeline, "history", None) if pipeline is not None else None
        return explain(flows, history=history if history is not None else retained, **extra)

    return explainer


def run_pipeline_app(build, config: Config, *, subtitle: str, nfcapd_dir: str = "") -> int:
    """The TUI at once; the model and the pipeline (`build() -> (pipeline, scorer)`) load behind
    it. A failure to start or a fatal pipeline error is raised after the UI has closed."""
    feed = StartingPipeline(build)
    app = FlowTriageApp(feed, config, subtitle=subtitle, nfcapd_dir=nfcapd_dir)
    app.run()
    error = feed.error
    if isinstance(error, UserError):
        raise error
    if error is not None:
        raise UserError(f"the pipeline stopped: {type(error).__name__}: {error}")
    return int(app.return_code or 0)


def run_watch(directory: str | Path, config: Config, args: Any = None) -> int:
    """`flowtriage watch DIR`: the pipeline on DIR (built as `watch --headless` builds it) and
    the TUI over its snapshots."""
    check_tui_config(config)
    check_model_path(config, args)

    def build():
        from engine.commands.watch import build_pipeline

        pipeline = build_pipeline(Path(directory), config, args)
        return pipeline, pipeline.scorer

    return run_pipeline_app(build, config, subtitle=f"watching {directory}")


def run_demo(config: Config, args: Any = None) -> int:
    """`flowtriage demo`: bundled sample dumps replayed as rotations into a temporary directory."""
    from tui.demo import run_demo as _run

    return _run(config, args)
