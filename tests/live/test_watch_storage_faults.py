"""Storage faults under the real `watch --headless`: a full disk (a small tmpfs holding the
output and the state database), a kill -9 while it is full, space freed again: every flow
is in the output exactly once. A read-only or corrupt state database is refused by name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.live_writer import sample_lines

ROOT = Path(__file__).resolve().parents[2]
HEADER, POOL = sample_lines()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


class Watcher:
    def __init__(self, d: Path, out: Path, cfg: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "watch", str(d), "--headless", "--all",
             "--rules-only", "--out", str(out), "--config", str(cfg)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.err: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)

    def wait_for(self, needle: str, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.err):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False


def _fill(where: Path) -> Path:
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []


@pytest.mark.slow
def test_a_full_disk_then_freed_space_loses_and_repeats_nothing(tmp_path):
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "3m"):
        pytest.skip("needs root and mount (a small tmpfs to fill)")
    try:
        d, out = tmp_path / "dumps", small / "out.jsonl"
        d.mkdir()
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[watch]\npoll_interval = 0.2\nsettle_seconds = 0.3\n'
                       f'state_db = "{small / "state.sqlite"}"\n')
        (d / "a.txt").write_bytes(HEADER + b"".join(POOL[:200]))
        w = Watcher(d, out, cfg)
        deadline = time.monotonic() + 60
        while len(_rows(out)) < 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_rows(out)) == 200, "".join(w.err)
        filler = _fill(small)
        (d / "b.txt").write_bytes(HEADER + b"".join(POOL[200:4200]))
        assert w.wait_for("retrying every"), "".join(w.err)  # said, and waiting
        assert w.proc.poll() is None, "the watcher must keep going"
        w.proc.send_signal(signal.SIGKILL)  # killed while the disk is full
        w.proc.wait(timeout=30)
        w = Watcher(d, out, cfg)
        time.sleep(3)
        (d / "c.txt").write_bytes(HEADER + b"".join(POOL[4200:4700]))
        time.sleep(2)
        filler.unlink()  # space comes back
        deadline = time.monotonic() + 90
        while len(_rows(out)) < 4700 and time.monotonic() < deadline:
            time.sleep(0.3)
        w.proc.send_signal(signal.SIGTERM)
        w.proc.wait(timeout=60)
        rows = _rows(out)
        seen = Counter((Path(r["file"]).name, r["line"]) for r in rows)
        expected = {("a.txt", i + 2) for i in range(200)} | {("b.txt", i + 2) for i in range(4000)}
        expected |= {("c.txt", i + 2) for i in range(500)}
        assert not {k: n for k, n in seen.items() if n > 1}, "repeated flows"
        assert set(seen) == expected, (len(expected - set(seen)), "".join(w.err)[-2000:])
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_a_corrupt_state_database_is_refused_by_name(tmp_path):
    from engine.cli.entry import main

    state = tmp_path / "state.sqlite"
    state.write_bytes(b"SQLite format 3\0" + os.urandom(4000))
    d = tmp_path / "dumps"
    d.mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[watch]\nstate_db = "{state}"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "watch", str(d), "--headless", "--rules-only", "--out",
         str(tmp_path / "o.jsonl"), "--config", str(cfg)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "state.sqlite" in proc.stderr and "Traceback" not in proc.stderr
    del main


def test_a_read_only_state_database_is_refused_by_name(tmp_path):
    small = tmp_path / "ro"
    if not _mount_tmpfs(small, "1m"):
        pytest.skip("needs root and mount (a read-only file system; root ignores chmod)")
    try:
        d = tmp_path / "dumps"
        d.mkdir()
        (d / "a.txt").write_bytes(HEADER + b"".join(POOL[:5]))
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[watch]\nstate_db = "{small / "state.sqlite"}"\n')
        argv = [sys.executable, "-m", "engine", "watch", str(d), "--headless", "--rules-only",
                "--out", str(tmp_path / "o.jsonl"), "--config", str(cfg)]
        first = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (tmp_path / "o.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
        subprocess.run(["mount", "-o", "remount,ro", str(small)], check=True)
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "state.sqlite" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
