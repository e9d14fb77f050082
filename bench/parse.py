"""Ingest throughput and memory: our parser vs polars alone, pandas and nfdump itself.

    python bench/parse.py [--flows 2000000] [--nfcapd /path/to/nfcapd-file] [--keep DIR]

Generates a large dump by repeating real flow lines (tests/fixtures: 1,075 real flows printed
by nfdump 1.7.1 as `-o extended` and `-o csv`) with varied source addresses and times, then
times each reader in a fresh subprocess so peak memory (ru_maxrss) is its own. `--nfcapd`
adds the nfdump baseline: that binary file is copied until it holds at least as many flows
and `nfdump -R DIR -o csv > /dev/null` is timed. Figures are noisy on a shared machine: read
the ratios, which are measured in the same run, and flows per CPU-second (all threads), which
contention distorts less than wall time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "formats"
TEMPLATES = {
    "extended": FIXTURES / "isp-port53.nfdump-1.7.1.extended.txt.gz",
    "csv": FIXTURES / "isp-port53.nfdump-1.7.1.csv.txt.gz",
}
TS_EXT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})")
V4_EXT = re.compile(r"(\d+\.\d+\.\d+\.)(\d+)(:\d+ +->)")
TS_CSV = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),")
V4_CSV = re.compile(r"^([^,]*,[^,]*,[^,]*,\d+\.\d+\.\d+\.)(\d+)(,)")


def _records(path: Path) -> tuple[str, list[str], str]:
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    body = [ln for ln in lines if ln[:2] == "20"]
    head = lines[0]
    tail = "\n".join(ln for ln in lines[1:] if ln[:2] != "20")
    return head, body, tail


def _split(line: str, ts_re: re.Pattern, v4_re: re.Pattern):
    """A record as (before octet, octet, after octet) with its timestamp(s) kept apart."""
    m = v4_re.search(line)
    if not m:
        return None
    return line[: m.start(2)], int(m.group(2)), line[m.end(2) :]


def generate(fmt: str, flows: int, out: Path) -> int:
    """Repeat the real records with every copy shifted in time and source address."""
    head, body, _ = _records(TEMPLATES[fmt])
    ts_re, v4_re = (TS_EXT, V4_EXT) if fmt == "extended" else (TS_CSV, V4_CSV)
    rows = [p for p in (_split(ln, ts_re, v4_re) for ln in body) if p is not None]
    reps = -(-flows // len(rows))
    tmpl = pl.DataFrame(
        {"pre": [r[0] for r in rows], "octet": [r[1] for r in rows], "post": [r[2] for r in rows]}
    )
    copies = pl.DataFrame({"k": pl.int_range(0, reps, eager=True)})
    frame = (
        copies.join(tmpl, how="cross")
        .head(flows)
        .with_columns(
            # same digit count keeps nfdump's column widths: 1->0-9, 2->10-99, 3->100-255
            octet=pl.when(pl.col("octet") < 10)
            .then((pl.col("octet") + pl.col("k")) % 10)
            .when(pl.col("octet") < 100)
            .then(10 + (pl.col("octet") + pl.col("k")) % 90)
            .otherwise(100 + (pl.col("octet") + pl.col("k")) % 156),
        )
    )
    ts_len = 23 if fmt == "extended" else 19
    first = frame["pre"].str.slice(0, ts_len)
    fmt_in = "%Y-%m-%d %H:%M:%S%.3f" if fmt == "extended" else "%Y-%m-%d %H:%M:%S"
    shift = pl.duration(seconds=pl.col("k") * 3)
    frame = frame.with_columns(
        t=first.str.to_datetime(fmt_in, time_unit="ms"),
    ).with_columns(
        t=(pl.col("t") + shift).dt.strftime(fmt_in.replace("%.3f", "%.3f")),
    )
    if fmt == "csv":
        # te (second field) moves with ts
        te = frame["pre"].str.slice(20, 19).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms")
        frame = frame.with_columns(
            te=(te + pl.duration(seconds=frame["k"] * 3)).dt.strftime("%Y-%m-%d %H:%M:%S"),
            rest=pl.col("pre").str.slice(39),
        )
        line = pl.concat_str(
            ["t", pl.lit(","), "te", "rest", pl.col("octet").cast(pl.String), "post"]
        )
    else:
        line = pl.concat_str(
            ["t", pl.col("pre").str.slice(ts_len), pl.col("octet").cast(pl.String), "post"]
        )
    text = frame.select(line.alias("l"))
    with open(out, "w") as fh:
        fh.write(head + "\n")
        text.write_csv(fh, include_header=False, quote_style="never")
        if fmt == "csv":
            fh.write(f"Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n{flows},0,0,0,0,0\n")
        else:
            fh.write(f"Summary: total flows: {flows}, total bytes: 0, total packets: 0\n")
    return frame.height


MEASURE = r"""
import json, sys, time
import psutil
mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
import polars as pl
if mode.startswith("ours"):
    from engine.ingest import read_dump
elif mode == "pandas":
    import pandas as pd
base = psutil.Process().memory_info().rss
import resource
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return r.ru_utime + r.ru_stime
c0 = cpu()
t0 = time.perf_counter()
if mode.startswith("ours"):
    frame = read_dump(path, final=True).flows
    rows, size = frame.height, frame.estimated_size()
elif mode == "polars":
    cols = ["ts", "te", "td", "sa", "da", "sp", "dp", "pr", "flg", "stos", "ipkt", "ibyt"]
    # ignore_errors: the Summary block at the end is not csv data
    frame = pl.read_csv(path, columns=cols, n_rows=n, ignore_errors=True)
    rows, size = frame.height, frame.estimated_size()
else:
    frame = pd.read_csv(path, usecols=list(range(13)), nrows=n)
    rows, size = len(frame), int(frame.memory_usage(deep=True).sum())
elapsed = time.perf_counter() - t0
cpu_s = cpu() - c0
# VmHWM is this process's own high-water mark (ru_maxrss can carry the parent's over exec)
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
peak = int(hwm.split()[1]) * 1024
print(json.dumps({"rows": rows, "seconds": elapsed, "cpu": cpu_s, "peak": peak - base, "size": size}))
"""


def measure(mode: str, path: Path, flows: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, str(path), str(flows)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def nfdump_baseline(nfcapd: Path, flows: int, work: Path) -> dict | None:
    if shutil.which("nfdump") is None:
        return None
    info = subprocess.run(["nfdump", "-I", "-r", str(nfcapd)], capture_output=True, text=True)
    m = re.search(r"^Flows:\s+(\d+)", info.stdout, re.M)
    per_file = int(m.group(1)) if m else 0
    if per_file == 0:
        raise SystemExit(f"bench: {nfcapd}: nfdump -I reports no flows")
    copies = -(-flows // per_file)
    binary = work / "binary"
    binary.mkdir()
    for i in range(copies):
        shutil.copy(nfcapd, binary / f"nfcapd.2019081218{i:02d}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        ["nfdump", "-R", str(binary), "-o", "csv"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"rows": copies * per_file, "seconds": elapsed, "cpu": cpu_s, "peak": None, "size": None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=2_000_000)
    parser.add_argument("--nfcapd", type=Path, help="a binary nfcapd file for the nfdump baseline")
    parser.add_argument("--keep", type=Path, help="write the generated dumps here and keep them")
    args = parser.parse_args()
    if args.nfcapd is not None and not args.nfcapd.is_file():
        raise SystemExit(f"bench: --nfcapd {args.nfcapd}: no such file")
    work = Path(tempfile.mkdtemp(prefix="flowtriage-bench-"))
    try:
        target = args.keep or work
        target.mkdir(parents=True, exist_ok=True)
        paths = {}
        for fmt in ("extended", "csv"):
            paths[fmt] = target / f"generated.{fmt}.txt"
            t0 = time.perf_counter()
            n = generate(fmt, args.flows, paths[fmt])
            print(
                f"generated {n} {fmt} flows ({paths[fmt].stat().st_size / 1e6:.0f} MB) in "
                f"{time.perf_counter() - t0:.1f}s",
                file=sys.stderr,
            )
        results = {
            "ours extended": measure("ours", paths["extended"], args.flows),
            "ours csv (1.7.1)": measure("ours", paths["csv"], args.flows),
            "polars read_csv (projected, no conversion)": measure(
                "polars", paths["csv"], args.flows
            ),
            "pandas read_csv": measure("pandas", paths["csv"], args.flows),
        }
        if args.nfcapd is not None:
            results["nfdump -R -o csv >/dev/null"] = nfdump_baseline(args.nfcapd, args.flows, work)
        else:
            print(
                "nfdump baseline skipped: pass --nfcapd FILE (a binary nfcapd file)",
                file=sys.stderr,
            )
        pandas_rate = results["pandas read_csv"]["rows"] / results["pandas read_csv"]["seconds"]
        print(
            f"{'reader':44s} {'flows':>9s} {'sec':>6s} {'flows/s':>10s} {'x pandas':>8s} "
            f"{'cpu s':>6s} {'flows/cpu-s':>11s} {'peak MB':>8s} {'frame MB':>8s} {'peak/frame':>10s}"
        )
        for name, r in results.items():
            if r is None:
                continue
            rate = r["rows"] / r["seconds"]
            peak = f"{r['peak'] / 1e6:8.0f}" if r["peak"] is not None else f"{'-':>8s}"
            size = f"{r['size'] / 1e6:8.0f}" if r["size"] else f"{'-':>8s}"
            ratio = f"{r['peak'] / r['size']:10.2f}" if r["peak"] and r["size"] else f"{'-':>10s}"
            print(
                f"{name:44s} {r['rows']:9d} {r['seconds']:6.2f} {rate:10.0f} "
                f"{rate / pandas_rate:8.1f} {r['cpu']:6.2f} {r['rows'] / r['cpu']:11.0f} "
                f"{peak} {size} {ratio}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
