"""Soak: the headless watcher (bundled model) over simulated rotations for a long time, with
faults injected, reporting RSS over time, lag, and lost/repeated flows (must be 0/0).

The dump directory behaves like nfcapd + gzip + nfexpire (tests/live_writer.DumpWriter: dumps
dribbled in, renamed, written in place, gzipped, truncated and reused, expired). Faults:
- kill -9 of the watcher every --kill-every seconds (jittered), restarted at once;
- a full disk every --enospc-every seconds for --enospc-seconds: the output and the state
  database live on a small tmpfs (root only; without it this fault is skipped and said so)
  that a filler file fills, then frees;
- corrupt dumps (junk text, a truncated gzip of junk) and dumps that vanish right after they
  appear; they hold no flows, so the accounting is unchanged.
At the end the writer stops, the watcher drains, is stopped with SIGTERM, and every flow the
writer wrote is looked up in the output: lost and repeated counts are printed.

    sudo python bench/soak.py --minutes 60 [--pause 1.0] [--kill-every 240]

RSS of the watcher process (not its short-lived predecessors) is sampled every 10 s and
printed per 5 minutes (min/max), with the watcher's reported lag.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live_writer import DumpWriter  # noqa: E402


class Watcher:
    def __init__(self, d: Path, out: Path, cfg: Path, log):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "watch", str(d), "--headless", "--all",
             "--out", str(out), "--config", str(cfg)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lag = 0.0
        self._log = log
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            m = re.search(r"lag=([0-9.]+)s", line)
            if m:
                self.lag = float(m.group(1))
            if "lag=" not in line:
                self._log.write(line)
                self._log.flush()


def _mount(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def _fill(where: Path) -> Path:
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--pause", type=float, default=1.0, help="mean seconds between writer steps")
    ap.add_argument("--kill-every", type=float, default=240)
    ap.add_argument("--enospc-every", type=float, default=420)
    ap.add_argument("--enospc-seconds", type=float, default=20)
    ap.add_argument("--tmpfs", default="768m")
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="flowtriage-soak-"))
    d, store = work / "dumps", work / "store"
    d.mkdir()
    store.mkdir()
    full_disk = _mount(store, args.tmpfs)
    out, state = store / "out.jsonl", store / "state.sqlite"
    cfg = work / "config.toml"
    cfg.write_text(f'[watch]\npoll_interval = 0.5\nsettle_seconds = 1.0\nstate_db = "{state}"\n')
    log = open(work / "watcher.log", "w")  # noqa: SIM115
    print(f"soak in {work}; full-disk fault {'on (tmpfs ' + args.tmpfs + ')' if full_disk else 'off (needs root)'}",
          flush=True)
    writer = DumpWriter(d, state, random.Random(rng.random()))
    stop = threading.Event()
    faults = {"kill -9": 0, "full disk": 0, "corrupt": 0, "vanished": 0}

    def write() -> None:
        while not stop.is_set():
            writer.step()
            r = rng.random()
            if r < 0.02:
                (d / f"junk.{rng.randrange(10**9)}.txt").write_bytes(os.urandom(3000) + b"\n\x1b[2J not a flow\n")
                faults["corrupt"] += 1
            elif r < 0.03:
                import gzip
                data = gzip.compress(b"junk line\n" * 5000)
                (d / f"cut.{rng.randrange(10**9)}.gz").write_bytes(data[: len(data) // 2])
                faults["corrupt"] += 1
            elif r < 0.04:
                p = d / f"vanish.{rng.randrange(10**9)}.txt"
                p.write_bytes(b"Date first seen\nnot a flow\n")
                time.sleep(0.05)
                p.unlink()
                faults["vanished"] += 1
            stop.wait(rng.uniform(0, 2 * args.pause))

    w = Watcher(d, out, cfg, log)
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    start = time.monotonic()
    end = start + args.minutes * 60
    next_kill = start + rng.uniform(0.5, 1.5) * args.kill_every
    next_full = start + args.enospc_every
    samples: list[tuple[float, float, float]] = []  # (minutes, RSS MiB, lag s)
    next_report = start + 300
    try:
        while time.monotonic() < end:
            time.sleep(10)
            now = time.monotonic()
            try:
                rss = psutil.Process(w.proc.pid).memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                rss = float("nan")
            samples.append(((now - start) / 60, rss, w.lag))
            if now >= next_kill:
                w.proc.send_signal(signal.SIGKILL)
                w.proc.wait(timeout=60)
                faults["kill -9"] += 1
                w = Watcher(d, out, cfg, log)
                next_kill = now + rng.uniform(0.5, 1.5) * args.kill_every
            if full_disk and now >= next_full:
                filler = _fill(store)
                faults["full disk"] += 1
                time.sleep(args.enospc_seconds)
                filler.unlink()
                next_full = time.monotonic() + args.enospc_every
            if now >= next_report:
                recent = [s for s in samples if s[0] >= (now - start) / 60 - 5]
                rs = [s[1] for s in recent if s[1] == s[1]]
                print(f"{(now - start) / 60:5.1f} min  RSS {min(rs):6.0f}-{max(rs):6.0f} MiB  "
                      f"lag max {max(s[2] for s in recent):5.1f} s  faults {faults}", flush=True)
                next_report = now + 300
    finally:
        stop.set()
        thread.join(timeout=60)
    want = writer.expected()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and w.proc.poll() is None:
        got = writer.found(out)
        if sum(got.values()) >= sum(want.values()):
            break
        time.sleep(2)
    time.sleep(2)
    w.proc.send_signal(signal.SIGTERM)
    w.proc.wait(timeout=120)
    got = writer.found(out)
    lost = sum((want - got).values())
    repeated = sum(n - 1 for n in got.values() if n > 1)
    extra = sum((got - want).values()) - repeated
    rs = [s[1] for s in samples if s[1] == s[1]]
    print(f"\n{args.minutes:g} min, {sum(want.values()):,} flows written in {len(writer.written):,} dumps "
          f"({sum(want.values()) / (args.minutes * 60):.0f} flows/s), writer actions {dict(writer.actions)}")
    print(f"faults: {faults}")
    print(f"watcher RSS MiB: first 5 min max {max(s[1] for s in samples if s[0] <= 5):.0f}, "
          f"last 5 min max {max(s[1] for s in samples if s[0] >= samples[-1][0] - 5):.0f}, "
          f"overall {min(rs):.0f}-{max(rs):.0f}; lag max {max(s[2] for s in samples):.1f} s")
    print(f"lost {lost}, repeated {repeated}, unexpected {extra}; exit code {w.proc.returncode}")
    with open(work / "rss.csv", "w") as fh:
        fh.write("minutes,rss_mib,lag_s\n")
        fh.writelines(f"{m:.2f},{r:.1f},{lag:.1f}\n" for m, r, lag in samples)
    print(f"RSS curve: {work / 'rss.csv'}; watcher messages: {work / 'watcher.log'}")
    if full_disk:
        subprocess.run(["umount", "-l", str(store)], capture_output=True)


if __name__ == "__main__":
    main()
