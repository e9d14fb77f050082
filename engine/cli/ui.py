"""The one seam between the command line and the TUI: `watch` and `demo` hand a Session to
tui.launch.run. Imported late on purpose: the engine never needs textual, and every other
command starts without it (import-linter allows this module, and only this one, to reach tui).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.live.session import Session


def run_tui(session: Session) -> int:
    from tui.launch import run  # the UI only when it is asked for

    return int(run(session) or 0)
