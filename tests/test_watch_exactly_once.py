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

ROOT = Path(__file__).resolve().parent.parent
KILLS = 20


def _watcher(directory: Path, out: Path, config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "watch", str(directory), "--headless", "--all",
         "--out", str(out), "--config", str(config)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


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
    try:
        for _ in range(KILLS):
            proc = _watcher(directory, out, config)
            # Kill at a random moment of its work, not of its imports: on a loaded machine
            # start-up alone can outlast the delay, and the watcher would never get to work.
            proc.stderr.readline()  # "watching DIR ..." (or EOF if it died)
            time.sleep(rng.uniform(0.05, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    finally:
        writing.clear()
        thread.join()
    assert not failure, failure
    # every kind of disturbance happened while the watcher was being killed
    assert {"rotate", "in place", "gzip", "truncate", "expire"} <= set(writer.actions), writer.actions

    expected = writer.expected()
    proc = _watcher(directory, out, config)
    try:
        deadline = time.monotonic() + 60
        found = writer.found(out)
        while found != expected and time.monotonic() < deadline:
            time.sleep(0.5)
            found = writer.found(out)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    missing = expected - found
    repeated = found - expected
    assert not missing and not repeated, (
        f"{sum(missing.values())} flows missing, {sum(repeated.values())} repeated of "
        f"{sum(expected.values())}; e.g. missing {list(missing)[:3]}, repeated {list(repeated)[:3]}"
    )
    assert not os.path.exists(str(out) + ".tmp")
