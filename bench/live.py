"""Live watcher: rotation-to-snapshot latency, and memory while many big rotations stream through.

    python bench/live.py                       # both parts, the issue's sizes
    python bench/live.py --latency-flows 100000 --latency-runs 20 --rotations 50 --rotation-flows 200000

(a) A dump of N flows is written under a temporary name outside the watched directory and renamed
    into it (nfcapd style); latency = from the rename to the published Snapshot that counts its
    flows (and so holds its suspicious ones). Baseline, same run: the same file read with
    engine.ingest.read_dump and scored directly, no watcher; the ratio says what watching costs.
(b) R rotations of M flows each are renamed in as fast as the pipeline takes them (at most three
    waiting: a burst), old dumps expired; RSS of this process is sampled every 50 ms and printed
    after every 10 rotations, to show it stays flat.
Figures on a shared 2-core machine are noisy; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config.settings import load_config  # noqa: E402
from engine.ingest import read_dump  # noqa: E402
from engine.live.pipeline import Pipeline  # noqa: E402
from engine.models.registry import load_scorer  # noqa: E402

SAMPLES = sorted((ROOT / "data" / "samples").glob("*/nfpcapd/nfcapd.*.txt.gz"))


def line_pool() -> tuple[bytes, list[bytes]]:
    header, pool = b"", []
    for path in SAMPLES:
        lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
        header = lines[0]
        pool.extend(x for x in lines[1:] if x[:2] == b"20")
    return header, pool


def make_dump(header: bytes, pool: list[bytes], n: int, hour: int) -> bytes:
    """n real flow lines, moved to their own hour so window context does not pile up."""
    body = b"".join(pool[i % len(pool)] for i in range(n))
    day, hh = 1 + hour // 24, hour % 24
    # every sample line starts "2026-11-22 HH:" : give each rotation its own day and hour
    lines = body.split(b"\n")
    stamp = f"2027-01-{day:02d} {hh:02d}:".encode()
    return header + b"\n".join(stamp + x[14:] if x[:2] == b"20" else x for x in lines)


class RssSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.proc = psutil.Process()
        self.peak = 0
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def bench_latency(config, scorer, header, pool, n_flows: int, runs: int, work: Path) -> None:
    watched, staging = work / "lat", work / "lat-staging"
    watched.mkdir()
    staging.mkdir()
    texts = [make_dump(header, pool, n_flows, hour) for hour in range(runs)]
    # baseline: read + score the same file directly
    base_file = staging / "baseline.txt"
    base_file.write_bytes(texts[0])
    base = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = read_dump(base_file, final=True)
        scorer.score(result.flows)
        base.append(time.perf_counter() - t0)
    base_file.unlink()
    cfg = dataclasses.replace(config, watch=dataclasses.replace(
        config.watch, state_db=str(work / "lat.sqlite")))
    latencies = []
    with Pipeline(watched, cfg, scorer) as pipe:
        for i, text in enumerate(texts):
            temp = staging / f"nfcapd.{i:04d}.txt"
            temp.write_bytes(text)
            target = (i + 1) * n_flows
            t0 = time.perf_counter()
            os.rename(temp, watched / temp.name)
            snap = pipe.wait_for(lambda s, t=target: s.counters.flows >= t, 60)
            latencies.append(time.perf_counter() - t0)
            if snap is None:
                print(f"  run {i}: no snapshot within 60 s ({pipe.error})")
                break
            flagged = snap.counters.flagged
            time.sleep(0.2)
    print(f"(a) latency, {n_flows} flows per dump, {len(latencies)} runs, scorer {type(scorer).__name__}:")
    print(f"    median {statistics.median(latencies):.3f} s, worst {max(latencies):.3f} s, "
          f"best {min(latencies):.3f} s (target < 1 s); flagged so far {flagged}")
    print(f"    baseline read_dump + score, no watcher: median {statistics.median(base):.3f} s; "
          f"watcher/baseline = {statistics.median(latencies) / statistics.median(base):.2f}x")


def bench_memory(config, scorer, header, pool, rotations: int, n_flows: int, work: Path) -> None:
    watched, staging = work / "mem", work / "mem-staging"
    watched.mkdir()
    staging.mkdir()
    cfg = dataclasses.replace(config, watch=dataclasses.replace(
        config.watch, state_db=str(work / "mem.sqlite")))
    sampler = RssSampler()
    sampler.start()
    rss0 = psutil.Process().memory_info().rss
    print(f"(b) memory, {rotations} rotations x {n_flows} flows (RSS before start: {mib(rss0)}):")
    t_start = time.perf_counter()
    written: list[Path] = []
    with Pipeline(watched, cfg, scorer) as pipe:
        for i in range(rotations):
            # a burst, bounded: at most three dumps waiting to be scored
            if pipe.wait_for(lambda s, i=i: s.counters.flows >= (i - 3) * n_flows, 120) is None:
                print(f"    rotation {i}: pipeline not keeping up after 120 s: {pipe.latest.counters}")
            temp = staging / f"nfcapd.{i:04d}.txt"
            temp.write_bytes(make_dump(header, pool, n_flows, 100 + i))
            os.rename(temp, watched / temp.name)
            written.append(watched / temp.name)
            while len(written) > 6:  # nfexpire
                written.pop(0).unlink()
            if (i + 1) % 10 == 0:
                if pipe.wait_for(lambda s, i=i: s.counters.flows >= (i + 1) * n_flows, 120) is None:
                    print(f"    rotation {i}: not all scored after 120 s: {pipe.latest.counters}")
                c = pipe.latest.counters
                print(f"    after {i + 1:3d} rotations: RSS {mib(psutil.Process().memory_info().rss)}, "
                      f"peak so far {mib(sampler.peak)}, flows {c.flows}, retained "
                      f"{pipe.latest.flows.height}")
    elapsed = time.perf_counter() - t_start
    sampler.stop_flag.set()
    print(f"    peak RSS {mib(sampler.peak)}; {rotations * n_flows / elapsed:,.0f} flows/s overall")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-flows", type=int, default=100_000)
    ap.add_argument("--latency-runs", type=int, default=20)
    ap.add_argument("--rotations", type=int, default=50)
    ap.add_argument("--rotation-flows", type=int, default=200_000)
    ap.add_argument("--batch-bytes", type=int, default=0, help="override [watch] batch_max_bytes")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    config = load_config(ROOT / "config.toml")
    if args.batch_bytes:
        config = dataclasses.replace(
            config, watch=dataclasses.replace(config.watch, batch_max_bytes=args.batch_bytes))
    scorer = load_scorer(config)
    header, pool = line_pool()
    with tempfile.TemporaryDirectory(prefix="flowtriage-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_latency:
            bench_latency(config, scorer, header, pool, args.latency_flows, args.latency_runs, work)
        if not args.skip_memory:
            bench_memory(config, scorer, header, pool, args.rotations, args.rotation_flows, work)


if __name__ == "__main__":
    main()
