"""FlowTriageApp: the triage TUI over engine snapshots (tui.launch starts it for a session).

Snapshots arrive on the pipeline's thread; the callback only stores a reference. A timer on the
UI thread applies the newest one at most `config.tui.refresh_hz` times a second (so bursts of
rotations coalesce), unless the view is paused, in which case it only counts what it skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.theme import BUILTIN_THEMES

from engine.config.settings import Config
from engine.core.errors import UserError
from engine.core.sanitize import sanitize
from engine.feedback.suppress import Feedback
from engine.live.pipeline import Pipeline
from engine.live.snapshot import Snapshot
from tui import keys
from tui.bindings import check_keymap
from tui.feed import Feed
from tui.feedback import Confirm
from tui.labels import LabelController
from tui.messages import Activity, Reapplied, Saved
from tui.models import Explainer, ModelController
from tui.nfdump import is_address
from tui.palette import palette_commands
from tui.screens.drilldown import FlowScreen
from tui.screens.flows import FlowsScreen
from tui.screens.help import HelpScreen
from tui.screens.incidents import IncidentFlowsScreen, IncidentsScreen
from tui.screens.messages import MessagesScreen
from tui.screens.sources import SourcesScreen
from tui.screens.table_screen import TableScreen
from tui.status import status_line


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
        feedback: Feedback | None = None,
        start: str = "flows",
        quit_warning: str = "",
    ) -> None:
        super().__init__()
        self.animation_level = "none"  # animations cost bytes over SSH and time in tests
        self.feed = feed
        self.config = config
        self.subtitle = subtitle
        self.start = start  # the first screen: "incidents" (watch, demo) or "flows"
        self.quit_warning = quit_warning  # what quitting loses (the demo's labels), said before
        self.explainer = explainer
        self.nfcapd_dir = nfcapd_dir or config.tui.nfcapd_dir
        self.snapshot: Snapshot | None = None  # the one on screen
        self._incoming: Snapshot | None = feed.latest  # the newest published
        self.paused = False
        self._told_error = False
        self._user_keymap = check_tui_config(config)
        self.labels = LabelController(self, feedback)  # n, l, u, N: durable label writes
        self.models = ModelController(self)  # R, rollback, the drill-down's explainer
        self.activity = Text()  # the status line's first item: saved / retraining / errors

    # ---- lifecycle ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self.theme = self.config.tui.theme
        if self._user_keymap:
            self.set_keymap(self._user_keymap)
        self.push_screen(IncidentsScreen() if self.start == "incidents" else FlowsScreen())
        self.feed.subscribe(self._published)
        hz = max(0.1, self.config.tui.refresh_hz)
        self.set_interval(1.0 / hz, self.apply_latest, name="refresh")
        self.feed.start()
        self.apply_latest()

    def on_unmount(self) -> None:
        self.labels.drain()  # a label being written is on disk before we exit
        self.feed.stop()
        self.labels.close()

    def _published(self, snapshot: Snapshot) -> None:
        # Runs on the pipeline's thread: only swap a reference (atomic), never touch widgets.
        self._incoming = snapshot

    @property
    def flows_behind(self) -> int:
        """Flows scored since the snapshot on screen (what a paused view has not shown)."""
        if self._incoming is None or self.snapshot is None:
            return 0
        return max(0, self._incoming.counters.flows - self.snapshot.counters.flows)

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
                try:
                    screen.view_changed()
                except NoMatches:  # the refresh timer fired while the app takes the screen down
                    return

    # ---- shared pieces -----------------------------------------------------------------

    def status_text(self) -> Text:
        return status_line(self.snapshot, self._incoming, self.activity, self.feed_error)

    def set_activity(self, text: str, style: str = "bold") -> None:
        self.activity = Text(sanitize(text), style=style)
        self._refresh_chrome()

    def copy_address(self, value: object) -> None:
        if not is_address(value):
            self.notify(f"Not an IP address, not copied: {sanitize(value)}", severity="warning", markup=False)
            return
        self.copy_to_clipboard(str(value))
        self.notify(f"Copied {value}", markup=False, timeout=2)

    def show_flow(self, row: dict) -> None:
        self.push_screen(FlowScreen(row, self.snapshot))

    def show_flows_matching(self, filter_text: str) -> None:
        """The flows table filtered (Enter on a source): the main one, or over the incidents."""
        while not isinstance(self.screen, FlowsScreen) and len(self.screen_stack) > 2:
            self.pop_screen()
        if isinstance(self.screen, FlowsScreen):
            self.screen.apply_filter(filter_text)
        else:
            self.push_screen(IncidentFlowsScreen(None, filter_text))

    # ---- collaborators' contracts (tui.feed.Feed, tui.labels, tui.models) ---------------

    @property
    def pipeline(self) -> Pipeline | None:
        return self.feed.pipeline

    def model_versions(self) -> list[str]:
        return self.models.versions()

    def rollback_model(self, version: str | None = None) -> None:
        self.models.rollback(version)

    def action_retrain(self) -> None:
        self.models.retrain()

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

    # ---- actions -----------------------------------------------------------------------

    def action_show_sources(self) -> None:
        if not isinstance(self.screen, SourcesScreen):
            self.push_screen(SourcesScreen())

    def action_messages(self) -> None:
        if not isinstance(self.screen, MessagesScreen):
            latest = self._incoming or self.snapshot
            self.push_screen(MessagesScreen(latest.messages if latest else (), self.feed_error))

    def current_explainer(self) -> Explainer | None:
        """The explainer given, else the scorer in use's (known once the pipeline loaded it)."""
        return self.explainer if self.explainer is not None else self.models.explainer()

    @property
    def feed_status(self) -> str:
        return self.feed.status

    @property
    def feed_error(self) -> str | None:
        error = self.feed.error
        return f"{type(error).__name__}: {error}" if error is not None else None

    def action_request_quit(self) -> None:
        """`q` on the main screen: q means "back" everywhere else, so quitting asks first."""
        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(Confirm(" ".join(p for p in ("Quit flowtriage?", self.quit_warning) if p)), answered)

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
        yield from palette_commands(self, screen)
        yield from super().get_system_commands(screen)
