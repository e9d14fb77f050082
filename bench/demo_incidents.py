"""How soon `flowtriage demo` names every attack of its data as an incident, in a real
terminal (tmux, 80x24), for each bundled corpus and flow shape.

    python bench/demo_incidents.py [--interval 5] [--timeout 60]

The attack classes of a corpus come from its labels file; a class counts as named once its
name is on a line of the first screen (the incidents list, 80x24, no key pressed). Prints,
per corpus and shape, the seconds from launch until each class was named. Target (issue 15):
every attack within 15 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def classes_of(corpus: str, shape: str) -> list[str]:
    labels = pl.read_csv(SAMPLES / corpus / f"{shape}-labels.csv.gz")
    return sorted(set(labels["label"].unique()) - {"normal"})


def screen(name: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout


def measure(corpus: str, shape: str, interval: float, timeout: float) -> dict[str, float | None]:
    wanted = classes_of(corpus, shape)
    name = f"ftbench-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -m engine demo --corpus {corpus} --shape {shape} --interval {interval:g}"
    started = time.monotonic()
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", command], check=True, cwd=ROOT)
    seen: dict[str, float | None] = dict.fromkeys(wanted)
    try:
        while time.monotonic() - started < timeout and any(v is None for v in seen.values()):
            lines = screen(name).splitlines()[2:-3]  # the table's rows
            for cls in wanted:
                if seen[cls] is None and any(f" {cls} " in f" {line} " or f" {cls}" in line for line in lines):
                    seen[cls] = time.monotonic() - started
            time.sleep(0.25)
        last = screen(name)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    print(f"{corpus}/{shape}: " + ", ".join(
        f"{c} {f'{t:.1f} s' if t is not None else 'NOT NAMED'}" for c, t in seen.items()))
    print("\n".join("    " + line for line in last.splitlines()[:12]))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    worst = 0.0
    for corpus in ("lab-dev", "lab-mixed-dev"):
        for shape in ("nfpcapd", "routerlike"):
            seen = measure(corpus, shape, args.interval, args.timeout)
            times = [t for t in seen.values() if t is not None]
            worst = max([worst, *times]) if len(times) == len(seen) else float("inf")
    print(f"every attack named within {worst:.1f} s (target 15 s)")


if __name__ == "__main__":
    main()
