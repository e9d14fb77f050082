"""Starting the TUI for a live session (engine.live.session.Session): the one entry point the
command line calls, through engine.cli.ui."""

from __future__ import annotations

from engine.core.errors import UserError
from engine.live.session import Session
from tui.app import FlowTriageApp, check_tui_config
from tui.feed import StartingPipeline


def run(session: Session) -> int:
    """The TUI at once; the model and the pipeline load behind it (`session.open`). A failure
    to start or a fatal pipeline error is raised after the UI has closed."""
    check_tui_config(session.config)
    session.check()
    feed = StartingPipeline(session.open)
    app = FlowTriageApp(
        feed, session.config, subtitle=session.subtitle, nfcapd_dir=session.config.tui.nfcapd_dir,
        start="incidents",
        quit_warning=("The demo's labels and retrained models go with its temporary directory."
                      if session.temporary else ""),
    )
    app.run()
    error = feed.error
    if isinstance(error, UserError):
        raise error
    if error is not None:
        raise UserError(f"the pipeline stopped: {type(error).__name__}: {error}")
    return int(app.return_code or 0)
