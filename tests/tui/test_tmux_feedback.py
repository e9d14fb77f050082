"""Labels from the real app (`flowtriage watch DIR` in tmux, 80x24) are durable: a relabel
survives `kill -9` right after the app says "saved", and a label made before a normal quit is
in `flowtriage labels export`.

The watcher runs with --rules-only (start-up in a fraction of the time of a model) over the two
fixture dumps of tests/fixtures/labels; the label store, checkpoints and models live in tmp_path.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from engine.core.schema import ANOMALY, LABELS
from engine.feedback.labelstore import LabelStore
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

if shutil.which("tmux") is None:
    pytest.skip("tmux is not installed", allow_module_level=True)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "labels"
DUMPS = ("nfcapd.202701110139.txt", "nfcapd.202701110140.txt")


class Terminal:
    """One tmux session running `command` with exec, so the pane's pid is the app's."""

    def __init__(self, command: str) -> None:
        self.name = f"ft-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "80", "-y", "24",
                        f"exec {command}"], check=True, cwd=ROOT)
        out = subprocess.run(["tmux", "display-message", "-p", "-t", self.name, "#{pane_pid}"],
                             capture_output=True, text=True, check=True)
        self.pid = int(out.stdout.strip())

    def screen(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, predicate, what: str, timeout: float = 60.0, pause: float = 0.1) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            if pause:
                time.sleep(pause)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{self.screen()}")

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def setup_watch(tmp_path: Path) -> tuple[Path, Path, Path]:
    directory = tmp_path / "dumps"
    directory.mkdir()
    for name in DUMPS:
        shutil.copy(FIXTURES / name, directory / name)
    db = tmp_path / "labels.sqlite"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[watch]\nstate_db = "{tmp_path / "state.sqlite"}"\nsettle_seconds = 0.2\npoll_interval = 0.2\n'
        f'[labels]\ndb = "{db}"\nmodel_dir = "{tmp_path / "models"}"\n'
        '[ingest]\ntimezone = "UTC"\n'
    )
    return directory, config, db


def watch_command(directory: Path, config: Path) -> str:
    return f"{sys.executable} -m engine watch {directory} --rules-only --config {config}"


def flagged_on_top(text: str) -> bool:
    lines = text.splitlines()
    return len(lines) > 2 and " flows " in lines[0] and any(a in lines[2] for a in ("amplific", "tunnel"))


def all_flows(term) -> None:
    """From the incidents screen (where watch starts) to every retained flow (`a`)."""
    term.wait_for(lambda t: " incidents" in t.splitlines()[0] and "no incidents" not in t, "the incidents")
    term.keys("a")


def test_a_relabel_survives_kill_9_right_after_saved(tmp_path):
    directory, config, db = setup_watch(tmp_path)
    term = Terminal(watch_command(directory, config))
    try:
        all_flows(term)
        term.wait_for(flagged_on_top, "a flagged row under the cursor")
        term.keys("n")
        # As fast as the screen can be read: the kill lands within a few ms of "saved".
        term.wait_for(lambda t: "saved: normal" in t, "the saved notice", pause=0)
        os.kill(term.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        while term.alive() and time.monotonic() - killed_at < 10:
            time.sleep(0.01)
        assert not term.alive()
    finally:
        term.close()
    with LabelStore(db) as store:
        events = store.events()
    assert events.height == 1
    event = events.row(0, named=True)
    assert (event["kind"], event["label"], event["scope"]) == ("label", "normal", "vector")
    assert event["file"] in DUMPS and event["verdict"] in ("amplification", "tunnel")


def test_a_label_made_in_the_app_is_in_the_labels_export(tmp_path):
    directory, config, db = setup_watch(tmp_path)
    term = Terminal(watch_command(directory, config))
    try:
        all_flows(term)
        term.wait_for(flagged_on_top, "a flagged row under the cursor")
        term.keys("l")
        term.wait_for(lambda t: "+ new class" in t, "the label picker")
        classes = [c for c in LABELS if c != ANOMALY]
        term.keys(str(classes.index("scan") + 1))  # the picker numbers the classes
        term.wait_for(lambda t: "saved: scan" in t, "the saved notice")
        term.wait_for(lambda t: "analyst:scan" in t, "the row's new reason")
        term.keys("q")  # back to the incidents
        term.wait_for(lambda t: " incidents" in t.splitlines()[0], "the incidents again")
        term.keys("q")
        term.wait_for(lambda t: "Quit flowtriage?" in t, "the quit question")
        term.keys("y")
        deadline = time.monotonic() + 30
        while term.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not term.alive()
    finally:
        term.close()
    out = tmp_path / "labels.csv"
    done = subprocess.run(
        [sys.executable, "-m", "engine", "labels", "export", "-o", str(out), "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [(r["label"], r["scope"]) for r in rows] == [("scan", "flow")]
    assert rows[0]["file"] in DUMPS and int(rows[0]["line"]) > 0
