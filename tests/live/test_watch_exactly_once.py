"""kill -9 the headless watcher at random moments while dumps rotate, grow, get gzipped,
truncated and expired: in the end the output holds every flow of every dump exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.live_writer import DumpWriter

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20


class Watcher:
    """`flowtriage watch --headless` as a subprocess; `ready` is set once it is watching."""

    def __init__(self, directory: Path, out: Path, config: Path):
        self.proc = subprocess.Popen(
            # --rules-only: the scorer does not matter here, and loading a model at each of
            # the many restarts would cost seconds of start-up on a loaded machine
            [sys.executable, "-m", "engine", "watch", str(directory), "--headless", "--all",
             "--rules-only", "--out", str(out), "--config", str(config)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.ready = threading.Event()
        self.err: list[str] = []
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)
            if "watching" in line:
                self.ready.set()

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self._drain.join(timeout=10)
        return code


@pytest.mark.slow
@pytest.mark.parametrize("observer", ["native", "polling"])
def test_every_flow_exactly_once_through_kills(tmp_path, observer):
    rng = random.Random(f"exactly-once-{observer}")
    directory, out, state = tmp_path / "dumps", tmp_path / "out.jsonl", tmp_path / "state.sqlite"
    directory.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[watch]\nobserver = "{observer}"\npoll_interval = 0.2\nsettle_seconds = 1.0\n'
        f'state_db = "{state}"\n'
    )
    writer = DumpWriter(directory, state, random.Random(rng.random()))
    writing = threading.Event()
    writing.set()
    failure: list[BaseException] = []

    def write():
        try:
            while writing.is_set():
                writer.step()
                time.sleep(writer.rng.uniform(0, 0.25))
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test thread
            failure.append(exc)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    kinds = {"rotate", "in place", "gzip", "truncate", "expire"}
    kills = 0
    try:
        # at least KILLS kills; a few more if the writer has not yet truncated or expired
        # anything (it only touches dumps the watcher committed, which a loaded machine delays)
        while kills < KILLS or (not kinds <= set(writer.actions) and kills < KILLS + 10):
            watcher = Watcher(directory, out, config)
            # Mostly a random moment of the first second of watching (mid-batch, mid-commit),
            # now and then a longer run, and now and then during start-up (the CLI imports the
            # model libraries first, which takes seconds on a loaded machine).
            if rng.random() < 0.85:
                watcher.ready.wait(60)
            time.sleep(rng.uniform(0.0, 1.2) if rng.random() < 0.8 else rng.uniform(2.0, 4.0))
            watcher.stop(signal.SIGKILL)
            kills += 1
    finally:
        writing.clear()
        thread.join()
    assert not failure, failure
    # every kind of disturbance happened while the watcher was being killed
    assert kinds <= set(writer.actions), writer.actions

    expected = writer.expected()
    watcher = Watcher(directory, out, config)
    # The killed watchers may already have written everything: SIGTERM only once this one is
    # up, or it lands during start-up, before the handler that makes it a clean stop.
    watcher.ready.wait(60)
    try:
        # SIGTERM before the watcher installed its handler (still importing) would be a kill,
        # not the clean stop this last run checks.
        assert watcher.ready.wait(60), "".join(watcher.err)[-2000:]
        deadline = time.monotonic() + 90
        found = writer.found(out)
        while found != expected and time.monotonic() < deadline:
            time.sleep(0.5)
            found = writer.found(out)
    finally:
        code = watcher.stop(signal.SIGTERM)
    assert code == 0, "".join(watcher.err)[-2000:]
    found = writer.found(out)  # again, now that nothing writes it
    missing = expected - found
    repeated = found - expected
    # what the writer did to the files involved, for whoever has to find the bug
    names = {key[0] for key in list(missing) + list(repeated)}
    history = [entry for entry in writer.log if any(name in entry for name in names)]
    assert not missing and not repeated, (
        f"{sum(missing.values())} flows missing, {sum(repeated.values())} repeated of "
        f"{sum(expected.values())}; e.g. missing {list(missing)[:3]}, repeated {list(repeated)[:3]}"
        f"; writer's actions on those dumps: {history}"
    )
    assert not os.path.exists(str(out) + ".tmp")
