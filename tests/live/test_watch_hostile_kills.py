"""The real `watch --headless`, kill -9'd at random moments, over the inputs that used to stop
or fool it: poison lines, a zero-filled file longer than the batch budget, a gzip written as
X.gz.tmp then renamed, gzip data without a suffix, writers pausing mid-line. In the end every
flow line is in the output exactly once at its own line number; the bad lines are reported."""

from __future__ import annotations

import gzip
import json
import os
import random
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


def _poisoned(lines: list[bytes]) -> tuple[list[bytes], set[int]]:
    """Three flow lines made poisonous (1-based line numbers in the dump returned)."""
    out = list(lines)
    out[5 - 2] = b"1969-12-31" + out[5 - 2][10:]  # zero time printed under TZ=America/New_York
    src, rest = out[9 - 2].split(b"->", 1)
    out[9 - 2] = src.rsplit(b":", 1)[0] + b":99999 ->" + rest  # same width: port out of range
    end = HEADER.index(b"Bytes") + 5  # packets and bytes, right-aligned under their titles
    line = out[14 - 2]
    out[14 - 2] = line[: end - 13] + b" 58 9999999 T" + line[end:]  # overflows Int64
    return out, {5, 9, 14}


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".tmp", ".gz"):
        name = name.removesuffix(suffix)
    return name


class Scenario:
    """Writes the dumps over time; `expected` maps stem -> the line numbers of its flows."""

    def __init__(self, d: Path, rng: random.Random):
        self.d, self.rng = d, rng
        self.expected: dict[str, set[int]] = {}

    def _flows(self, stem: str, body: list[bytes], bad: set[int] = frozenset()) -> bytes:
        self.expected[stem] = {i + 2 for i in range(len(body))} - set(bad)
        return HEADER + b"".join(body)

    def _slow(self, path: Path, data: bytes, pieces: int, pause: float) -> None:
        cuts = sorted(self.rng.sample(range(1, len(data)), pieces - 1))
        with open(path, "ab") as fh:
            for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
                fh.write(data[a:b])
                fh.flush()
                time.sleep(self.rng.uniform(0, pause))

    def run(self) -> None:
        rng = self.rng
        start = rng.randrange(0, len(POOL) - 3000)
        chunk = lambda n: POOL[start + n * 300 : start + (n + 1) * 300]  # noqa: E731
        # a writer that pauses mid-line for longer than settle_seconds (0.5 s)
        self._slow(self.d / "d1.txt", self._flows("d1.txt", chunk(0)), 8, 1.2)
        body, bad = _poisoned(chunk(1))
        self._slow(self.d / "d2-poison.txt", self._flows("d2-poison.txt", body, bad), 4, 0.3)
        zeros = self.d / "d3-zeros.txt"
        zeros.write_bytes(HEADER + b"\0" * (3 << 20))  # one line, 3x the batch budget
        time.sleep(1.0)
        with open(zeros, "ab") as fh:
            fh.write(b"\n" + b"".join(chunk(2)))
        self.expected["d3-zeros.txt"] = {i + 3 for i in range(300)}
        gz = gzip.compress(self._flows("d4.txt", chunk(3)), mtime=0)
        tmp = self.d / "d4.txt.gz.tmp"
        self._slow(tmp, gz, 5, 0.8)
        os.rename(tmp, self.d / "d4.txt.gz")
        (self.d / "d5").write_bytes(gzip.compress(self._flows("d5", chunk(4)), mtime=0))
        self._slow(self.d / "d6.txt", self._flows("d6.txt", chunk(5)), 6, 0.4)


def _start(d: Path, out: Path, cfg: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "watch", str(d), "--headless", "--all", "--out", str(out),
         "--config", str(cfg)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_hostile_inputs_through_kill_9_lose_repeat_and_shift_nothing(tmp_path):
    rng = random.Random(18)
    d, out = tmp_path / "dumps", tmp_path / "out.jsonl"
    d.mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[watch]\npoll_interval = 0.2\nsettle_seconds = 0.5\nbatch_max_bytes = 1048576\n'
        f'state_db = "{tmp_path / "state.sqlite"}"\n'
    )
    scenario = Scenario(d, rng)
    writer = threading.Thread(target=scenario.run, daemon=True)
    writer.start()
    stderr: list[str] = []
    proc = _start(d, out, cfg)
    kills = 0
    while writer.is_alive():
        time.sleep(rng.uniform(2.0, 5.0))
        proc.send_signal(signal.SIGKILL)
        stderr.append(proc.communicate(timeout=30)[1])
        kills += 1
        proc = _start(d, out, cfg)
    writer.join()
    want = sum(len(v) for v in scenario.expected.values())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_bytes().splitlines()) >= want:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    stderr.append(proc.communicate(timeout=60)[1])
    assert proc.returncode == 0, stderr[-1][-3000:]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    seen = Counter((_stem(r["file"]), r["line"]) for r in rows)
    repeated = {k: n for k, n in seen.items() if n > 1}
    expected = {(stem, line) for stem, lines in scenario.expected.items() for line in lines}
    lost = expected - set(seen)
    extra = set(seen) - expected
    assert kills >= 3
    assert not repeated, sorted(repeated)[:10]
    assert not lost, sorted(lost)[:10]
    assert not extra, sorted(extra)[:10]  # a shifted line number shows up as lost + extra
    err = "".join(stderr)
    assert "d2-poison.txt" in err and "d3-zeros.txt" in err
    assert all(r["flows"] >= 1 for r in rows)  # no half line turned into a flow
