"""`flowtriage watch` as a real subprocess: headless output, clean stop on SIGTERM, messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.live.test_tail import dump

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[watch]\npoll_interval = 0.1\nsettle_seconds = 0.3\nstate_db = "{tmp_path / "s.sqlite"}"\n')
    return cfg


def _watch(*args, tmp_path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "watch", *map(str, args), "--config", str(_config(tmp_path))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_lines(path: Path, n: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= n:
            break
        time.sleep(0.1)
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def test_headless_appends_json_lines_and_stops_cleanly_on_sigterm(tmp_path):
    d = tmp_path / "dumps"
    d.mkdir()
    (d / "a.txt").write_bytes(dump(400))
    (d / "junk.txt").write_bytes(b"\x1b[2Jnot a flow\n")
    out = tmp_path / "out.jsonl"
    proc = _watch(d, "--headless", "--all", "--alerts", out, tmp_path=tmp_path)
    assert _wait_lines(out, 400) == 400
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["line"] for r in rows} == set(range(2, 402))
    assert rows[0]["ts_first"][10] == "T" and 0.0 <= rows[0]["score"] <= 1.0
    assert "flows=400" in err and "junk.txt: 1 line(s) skipped" in err
    assert "\x1b" not in err  # dump text never reaches the terminal raw


def _stderr_until(proc: subprocess.Popen, needle: str, timeout: float = 60.0) -> list[str]:
    """Lines of proc's stderr read until one contains `needle` (or the timeout passes)."""
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        for line in proc.stderr:
            lines.append(line)
            if needle in line:
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    found.wait(timeout)
    return lines


def test_headless_writes_only_suspicious_flows_unless_all(tmp_path):
    d = tmp_path / "dumps"
    d.mkdir()
    (d / "a.txt").write_bytes(dump(3000))
    out = tmp_path / "out.jsonl"
    proc = _watch(d, "--headless", "--out", out, tmp_path=tmp_path)
    lines = _stderr_until(proc, "flows=3000")
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    time.sleep(0.2)  # let the pump thread drain the last lines
    err = "".join(lines)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    status = [line for line in err.splitlines() if "flows=" in line][-1]
    assert "flows=3000" in status and f"flagged={len(rows)}" in status
    assert rows and all(r["verdict"] != "normal" for r in rows)


def test_headless_needs_an_output_file(tmp_path):
    proc = _watch(tmp_path, "--headless", tmp_path=tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "--headless needs --out" in err


def test_a_missing_directory_is_a_user_error(tmp_path):
    proc = _watch(tmp_path / "nope", "--headless", "--out", tmp_path / "o.jsonl", tmp_path=tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "not a directory" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_reported_and_the_watcher_goes_on(tmp_path):
    d = tmp_path / "dumps"
    d.mkdir()
    secret = d / "a-secret.txt"
    secret.write_bytes(dump(10))
    secret.chmod(0)
    (d / "b.txt").write_bytes(dump(20))
    out = tmp_path / "out.jsonl"
    proc = _watch(d, "--headless", "--all", "--out", out, tmp_path=tmp_path)
    assert _wait_lines(out, 20) == 20
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert "cannot read" in err and "a-secret.txt" in err and "Permission denied" in err
    assert "errors=1" in err


def test_watch_starts_without_loading_model_libraries_with_rules_only(tmp_path):
    """Restarts after a crash should be quick: --rules-only needs no model libraries."""
    code = (
        "import sys\n"
        "from engine.cli.entry import build_parser\n"
        "build_parser('watch').parse_args(['watch', '.', '--headless', '--rules-only'])\n"
        "import engine.cli.commands.watch, engine.live.pipeline, engine.detect.scorer\n"
        "print(','.join(m for m in ('sklearn', 'skops', 'pyod') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
