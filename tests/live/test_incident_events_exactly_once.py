"""kill -9 the headless watcher while it reads: the incident events file beside its output
still holds each incident's open and close exactly once, and its last word on each incident
is what an uninterrupted run says (issue 15)."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DUMPS = sorted((ROOT / "data/samples/lab-mixed-dev/routerlike").glob("nfcapd.*"))


def setup(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    base = tmp_path / name
    (base / "dumps").mkdir(parents=True)
    for dump in DUMPS:
        shutil.copy(dump, base / "dumps" / dump.name)
    config = base / "config.toml"
    # small batches: many commits, so kills land between and inside them
    config.write_text(f'[watch]\nstate_db = "{base / "state.sqlite"}"\nsettle_seconds = 0.2\n'
                      'poll_interval = 0.1\nbatch_max_bytes = 65536\n')
    return base / "dumps", base / "out.jsonl", config


def watcher(directory: Path, out: Path, config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "watch", str(directory), "--headless", "--rules-only",
         "--out", str(out), "--config", str(config)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def watching(proc: subprocess.Popen, timeout: float = 120.0) -> threading.Event:
    """Set once the watcher says it is watching: its SIGTERM handler is installed by then
    (a SIGTERM during start-up imports would be a kill, not the clean stop checked here)."""
    ready = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            if "watching" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(timeout)
    return ready


def events(out: Path) -> list[dict]:
    path = out.with_name("out.incidents.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_until_idle(directory: Path, out: Path, config: Path, flows: int) -> None:
    proc = watcher(directory, out, config)
    assert watching(proc).is_set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and sum(1 for _ in out.open()) >= flows and flows:
            break
        time.sleep(0.3)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


@pytest.mark.slow
def test_incident_events_exactly_once_through_kills(tmp_path):
    directory, out, config = setup(tmp_path, "clean")
    proc = watcher(directory, out, config)
    assert watching(proc).is_set()
    deadline = time.monotonic() + 120
    previous = -1
    while time.monotonic() < deadline:  # until the output stops growing
        time.sleep(3.0)
        size = out.stat().st_size if out.exists() else 0
        if size == previous and size:
            break
        previous = size
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    flagged = sum(1 for _ in out.open())
    clean = events(out)
    assert clean and {e["event"] for e in clean} >= {"open"}

    rng = random.Random("incident-events")
    directory, killed_out, config = setup(tmp_path, "killed")
    for _ in range(8):
        proc = watcher(directory, killed_out, config)
        time.sleep(rng.uniform(1.5, 4.0))  # start-up imports, then somewhere in the reading
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    run_until_idle(directory, killed_out, config, flagged)
    killed = events(killed_out)
    assert sum(1 for _ in killed_out.open()) == flagged

    def opened_and_closed(evs: list[dict]) -> list[tuple[str, str]]:
        return sorted((e["event"], e["incident"]) for e in evs if e["event"] != "update")

    assert opened_and_closed(killed) == opened_and_closed(clean)
    last = lambda evs: {e["incident"]: (e["flows"], e["bytes"], e["last_seen"]) for e in evs}  # noqa: E731
    assert last(killed) == last(clean)
