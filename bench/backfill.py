"""`flowtriage backfill` on local, Dask and Spark over the same archive, in one run.

Builds an archive from the bundled samples (data/samples/*/{nfpcapd,routerlike}: four exporters)
by repeating each exporter's rotations on consecutive days (dates in the text and the file
names moved, zstd-compressed as a rotated archive would be) until it holds about --flows
flows, then runs `flowtriage backfill` once per engine into its own output directory and
prints, per engine: wall time, flows/s, CPU seconds of the whole process tree (driver, JVM,
Python workers, Dask nanny and workers; sampled with psutil every 0.2 s, so a process that
lives less than that is missed) and CPU-seconds per million flows. `local` is the baseline: the
ratios are against it, measured in the same run. It also checks that the engines wrote the
same verdicts and reasons.

    nice python bench/backfill.py [--flows 20000000] [--engines local,dask,spark] [--keep DIR]

Long (tens of minutes on two cores): run it niced. Figures on a shared machine are noisy;
the per-core cost (CPU-s per million flows) is what sizes a cluster (docs/scale.md).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psutil
import zstandard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from engine.core.schema import SCORED_SCHEMA, conform  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
_DATE = re.compile(rb"\b(\d{4})-(\d\d)-(\d\d) ")


def build(root: Path, flows: int) -> tuple[int, int]:
    """The archive under root/<corpus>-<shape>/; returns (flows, files)."""
    sets = []
    for corpus in ("lab-dev", "lab-mixed-dev"):
        for shape in ("nfpcapd", "routerlike"):
            dumps = [(p.name.removesuffix(".gz"), gzip.decompress(p.read_bytes()))
                     for p in sorted((SAMPLES / corpus / shape).glob("nfcapd.*.txt.gz"))]
            lines = sum(text.count(b"\n") - 1 for _n, text in dumps)
            sets.append((f"{corpus}-{shape}", dumps, lines))
    per_day = sum(lines for _e, _d, lines in sets)
    days = max(1, round(flows / per_day))
    cctx = zstandard.ZstdCompressor(level=3)
    total = files = 0
    for exporter, dumps, lines in sets:
        out = root / exporter
        out.mkdir(parents=True)
        for k in range(days):
            for name, text in dumps:
                dates = {m[0] for m in _DATE.finditer(text)}
                for old in dates:
                    y, m, d = (int(x) for x in old[:10].split(b"-"))
                    new = (date(y, m, d) + timedelta(days=k)).isoformat().encode() + b" "
                    text = text.replace(old, new)
                stamp = name.split(".")[1]
                when = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8])) + timedelta(days=k)
                fresh = name.replace(stamp, when.strftime("%Y%m%d") + stamp[8:])
                (out / (fresh + ".zst")).write_bytes(cctx.compress(text))
                files += 1
            total += lines
    return total, files


def run(engine: str, archive: Path, out: Path) -> dict[str, float]:
    inputs = sorted(str(p) for p in archive.iterdir())
    cmd = [sys.executable, "-m", "engine", "backfill", *inputs, "--out", str(out),
           "--engine", engine]
    if engine == "spark":
        cmd += ["--spark-conf", f"spark.master=local[{os.cpu_count()}]",
                "--spark-conf", "spark.driver.memory=4g"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, float] = {}
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    seen[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.monotonic() - started
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed ({proc.returncode}):\n{stderr[-3000:]}")
    last = [line for line in stderr.splitlines() if "flows in" in line]
    print(f"  {engine}: {last[-1] if last else stderr[-300:]}", file=sys.stderr)
    return {"wall": wall, "cpu": sum(seen.values())}


def _partition(directory: Path) -> pl.DataFrame:
    frame = pl.concat([conform(pl.read_parquet(p), SCORED_SCHEMA)
                       for p in sorted(directory.glob("*.parquet"))])
    return frame.sort(["file", "line"], maintain_order=True)


def compare(engine: str, out: Path, first: str, base_out: Path) -> None:
    """Partition by partition (bounded memory): every column equal but the score, to 1e-12."""
    parts = sorted(p.relative_to(base_out) for p in base_out.glob("exporter=*/day=*"))
    theirs = sorted(p.relative_to(out) for p in out.glob("exporter=*/day=*"))
    rows, worst, differ = 0, 0.0, []
    for part in parts:
        a, b = _partition(base_out / part), _partition(out / part) if part in theirs else None
        rows += a.height
        cols = [c for c in a.columns if c != "score"]
        if b is None or b.height != a.height or not b.select(cols).equals(a.select(cols)):
            differ.append(str(part))
            continue
        worst = max(worst, float((a["score"] - b["score"]).abs().max() or 0.0))
    verdict = "identical" if not differ and parts == theirs else f"DIFFER in {differ[:3]}"
    print(f"{engine} vs {first}: {len(parts)} partitions, {rows:,} rows; verdicts and reasons "
          f"{verdict}; max |score diff| {worst:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=20_000_000)
    parser.add_argument("--engines", default="local,dask,spark")
    parser.add_argument("--keep", metavar="DIR", help="build the archive and outputs here, keep them")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ft-backfill-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        archive = work / "archive"
        t0 = time.monotonic()
        if not archive.exists():
            flows, files = build(archive, args.flows)
        else:
            files = sum(1 for _ in archive.rglob("nfcapd.*"))
            flows = 0
        print(f"archive: {files} files, {flows or '?'} flows, "
              f"{sum(p.stat().st_size for p in archive.rglob('*') if p.is_file()) / 1e6:.0f} MB "
              f"zstd ({time.monotonic() - t0:.0f} s to build); {os.cpu_count()} cores", flush=True)
        results = {}
        outputs = {}
        for engine in args.engines.split(","):
            out = work / f"out-{engine}"
            shutil.rmtree(out, ignore_errors=True)
            results[engine] = run(engine, archive, out)
            outputs[engine] = out
        first = next(iter(outputs))
        # what the parser counts as flows (the line estimate above includes summary lines)
        flows = sum(pl.scan_parquet(p).select(pl.len()).collect().item()
                             for p in outputs[first].glob("exporter=*/day=*/*.parquet"))
        print(f"\n{flows:,} flows; baseline {first}, measured in this run")
        print(f"{'engine':8} {'wall s':>8} {'flows/s':>10} {'CPU s':>8} {'CPU s/M flows':>14} "
              f"{'x wall':>7} {'x CPU':>6}")
        for engine, r in results.items():
            b = results[first]
            print(f"{engine:8} {r['wall']:8.1f} {flows / r['wall']:10,.0f} {r['cpu']:8.1f} "
                  f"{r['cpu'] / (flows / 1e6):14.1f} {r['wall'] / b['wall']:7.2f} "
                  f"{r['cpu'] / b['cpu']:6.2f}")
        for engine, out in outputs.items():
            if engine != first:
                compare(engine, out, first, outputs[first])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
