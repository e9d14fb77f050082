"""Replay recorded dumps into a directory as if a collector were rotating them.

Used by `flowtriage demo` (and its tests): each dump appears whole, by an atomic rename from a
staging directory on the same filesystem, so a watcher never sees half a file; one every
`interval` seconds, the first at once.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from engine.core.errors import UserError

# A wheel carries the samples inside the package (pyproject force-include); a source checkout
# has them at the top level.
_ENGINE = Path(__file__).resolve().parents[1]
_PACKAGED = _ENGINE / "samples"
SAMPLES = _PACKAGED if _PACKAGED.is_dir() else _ENGINE.parent / "data" / "samples"


def sample_dumps(corpus: str = "lab-dev", shape: str = "nfpcapd") -> list[Path]:
    """The bundled dumps of one corpus and shape, in rotation order."""
    folder = SAMPLES / corpus / shape
    dumps = sorted(folder.glob("nfcapd.*.txt.gz"))
    if not dumps:
        known = sorted(f"{p.parent.name}/{p.name}" for p in SAMPLES.glob("*/*") if p.is_dir())
        raise UserError(
            f"no bundled sample dumps in {folder}"
            + (f"; available: {', '.join(known)}" if known else " (run from a source checkout)")
        )
    return dumps


class Replayer:
    """Copies `dumps` into `directory`, one per `interval` seconds, on its own thread."""

    def __init__(self, dumps: Sequence[Path], directory: Path, *, interval: float, staging: Path) -> None:
        if interval < 0:
            raise UserError("--interval must not be negative")
        self.dumps = list(dumps)
        self.directory = Path(directory)
        self.staging = Path(staging)
        self.interval = interval
        self.placed: list[Path] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replayer", daemon=True)

    def start(self) -> Replayer:
        self.staging.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    @property
    def done(self) -> bool:
        return len(self.placed) == len(self.dumps)

    def place(self, dump: Path) -> Path:
        staged = self.staging / dump.name
        shutil.copyfile(dump, staged)
        target = self.directory / dump.name
        os.replace(staged, target)  # atomic: the watcher sees no file, then the whole file
        self.placed.append(target)
        return target

    def _run(self) -> None:
        for position, dump in enumerate(self.dumps):
            if position and self._stop.wait(self.interval):
                return
            self.place(dump)
