"""Printing untrusted text (addresses, file names, reasons from dumps) to a terminal safely.

Anything read from a dump or a file name may carry escape sequences or control characters;
printed raw they could move the cursor, retitle the window or worse. `inert` makes such text
visible but harmless. Rich output built from it must use Text objects, never markup strings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from engine.core.sanitize import inert

__all__ = ["file_progress", "inert", "say", "stderr_console"]


def stderr_console(*, quiet: bool = False) -> Console:
    """A Rich console on stderr that never interprets markup or emoji in what it prints."""
    return Console(
        file=sys.stderr, quiet=quiet, markup=False, emoji=False, highlight=False, soft_wrap=True
    )


@contextmanager
def file_progress(paths: Sequence[Path], console: Console, *, enabled: bool = True):
    """A progress bar over `paths` by size on `console` (stderr); yields `advance(path)`.

    Shown only on a terminal and for more than one file; file names are printed inert.
    """
    sizes = {p: max(p.stat().st_size, 1) for p in paths}
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[done]}/{task.fields[files]} files", markup=False),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal and len(paths) > 1),
    )
    with progress:
        task = progress.add_task("reading", total=sum(sizes.values()), done=0, files=len(paths))

        def advance(path: Path) -> None:
            done = progress.tasks[0].fields["done"] + 1
            progress.update(task, advance=sizes.get(path, 0), done=done, description=inert(path.name))

        yield advance


def say(console: Console, line: str) -> None:
    """Print one already-inert line on the stderr console (plays well with the progress bar)."""
    console.print(Text(line), soft_wrap=True)
