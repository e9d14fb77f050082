"""Peak memory of the batch commands against the size of their input, and a compression bomb.

Builds one real rotation (lab-mixed-dev nfpcapd 10:05, 36,8k flows) repeated 1x, 10x and 30x
in one extended dump, every copy on its own day and its own addresses (so windows and hosts do
not merge across copies), then runs each command as a subprocess and reports its peak RSS
(ru_maxrss from wait4) and wall time. A watchdog kills a run whose RSS passes --cap (default
6 GiB): the machine is shared, and a run that would take it down is reported as killed.

    python bench/memory.py [--sizes 1 10 30] [--commands score parse] [--cap-gib 6] [--bomb]

--bomb also runs `parse` on a 1 MB gzip holding 1 GiB of zeros (the issue's bomb). Figures go
to stdout as a table; nothing is asserted (the tests assert behaviour, this measures).
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "data/samples/lab-mixed-dev/nfpcapd/nfcapd.202611221005.txt.gz"
TRAILER = (b"Summary:", b"Time window:", b"Total flows processed:", b"Sys:")


def build(copies: int, out_dir: Path) -> Path:
    path = out_dir / f"rotation-{copies}x.txt"
    if path.exists():
        return path
    lines = gzip.decompress(SOURCE.read_bytes()).split(b"\n")
    header = lines[0]
    body = b"\n".join(ln for ln in lines[1:] if ln and not ln.startswith(TRAILER))
    with open(path, "wb") as fh:
        fh.write(header + b"\n")
        for k in range(copies):
            day = f"2026-{11 + (22 + k) // 31:02d}-{(22 + k) % 31 + 1:02d} ".encode()
            copy = body.replace(b"2026-11-22 ", day)
            copy = copy.replace(b" 127.40.", f" 10.{100 + k}.".encode())  # same width
            fh.write(copy + b"\n")
    return path


def bomb(out_dir: Path, gib: int = 1) -> Path:
    path = out_dir / "bomb.txt.gz"
    if not path.exists():
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = b"\0" * (1 << 20)
        with open(path, "wb") as fh:
            for _ in range(gib << 10):
                fh.write(comp.compress(zeros))
            fh.write(comp.flush())
    return path


def run(argv: list[str], cap: int) -> tuple[float, float, int, bool, str]:
    """(peak RSS MiB, wall s, exit code, killed by the cap, last stderr line)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed, finished = threading.Event(), threading.Event()

    def watch() -> None:  # never reaps the child (wait4 below must get its rusage)
        try:
            p = psutil.Process(proc.pid)
            while not finished.is_set():
                if p.memory_info().rss > cap:
                    killed.set()
                    proc.kill()
                    return
                time.sleep(0.05)
        except psutil.NoSuchProcess:
            return

    threading.Thread(target=watch, daemon=True).start()
    err = proc.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    finished.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    last = (err.strip().splitlines() or [""])[-1][:150]
    return usage.ru_maxrss / 1024, wall, proc.returncode, killed.is_set(), last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 30])
    ap.add_argument("--commands", nargs="+", default=["score", "parse"])
    ap.add_argument("--cap-gib", type=float, default=6.0)
    ap.add_argument("--bomb", action="store_true")
    ap.add_argument("--dir", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    cap = int(args.cap_gib * (1 << 30))
    py = [sys.executable, "-m", "engine"]
    print(f"{'command':8} {'input':>16} {'size MB':>8} {'peak RSS MiB':>13} {'wall s':>7} {'exit':>4}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for command in args.commands:
            for n in args.sizes:
                dump = build(n, args.dir)
                out = Path(tmp) / ("o.jsonl" if command == "score" else "o.csv")
                extra = ["--all", "-q"] if command == "score" else []
                rss, wall, code, killed, last = run([*py, command, str(dump), "-o", str(out), *extra], cap)
                size = dump.stat().st_size / 1e6
                note = " KILLED at the cap" if killed else ("" if code == 0 else f"  {last}")
                print(f"{command:8} {dump.name:>16} {size:8.1f} {rss:13.0f} {wall:7.1f} {code:>4}{note}",
                      flush=True)
        if args.bomb:
            path = bomb(args.dir)
            rss, wall, code, killed, last = run([*py, "parse", str(path), "-o", str(Path(tmp) / "b.csv")], cap)
            note = " KILLED at the cap" if killed else ""
            print(f"{'parse':8} {path.name:>16} {path.stat().st_size / 1e6:8.1f} {rss:13.0f} "
                  f"{wall:7.1f} {code:>4}{note}\n  {last}", flush=True)


if __name__ == "__main__":
    main()
