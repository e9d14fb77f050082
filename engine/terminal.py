"""Printing untrusted text (addresses, file names, reasons from dumps) to a terminal safely.

Anything read from a dump or a file name may carry escape sequences or control characters;
printed raw they could move the cursor, retitle the window or worse. `inert` makes such text
visible but harmless. Rich output built from it must use Text objects, never markup strings.
"""

from __future__ import annotations

import re
import sys

from rich.console import Console

# C0 and C1 controls, DEL, and Unicode bidi overrides that can reorder what the eye sees.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def inert(text: object) -> str:
    """`text` with every control character shown as a \\xNN / \\uNNNN escape."""
    return _UNSAFE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), str(text))


def stderr_console(*, quiet: bool = False) -> Console:
    """A Rich console on stderr that never interprets markup or emoji in what it prints."""
    return Console(
        file=sys.stderr, quiet=quiet, markup=False, emoji=False, highlight=False, soft_wrap=True
    )
