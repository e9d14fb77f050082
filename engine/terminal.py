"""Printing untrusted text (addresses, file names, reasons from dumps) to a terminal safely.

Anything read from a dump or a file name may carry escape sequences or control characters;
printed raw they could move the cursor, retitle the window or worse. `inert` makes such text
visible but harmless. Rich output built from it must use Text objects, never markup strings.
"""

from __future__ import annotations

import sys

from rich.console import Console

from engine.sanitize import inert

__all__ = ["inert", "stderr_console"]


def stderr_console(*, quiet: bool = False) -> Console:
    """A Rich console on stderr that never interprets markup or emoji in what it prints."""
    return Console(
        file=sys.stderr, quiet=quiet, markup=False, emoji=False, highlight=False, soft_wrap=True
    )
