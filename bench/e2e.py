"""The command as a user runs it, over many files, next to the seed pipeline, in the same run.

    python bench/e2e.py [--runs 3] [--real-nfcapd FILE] [--skip-seed] [--baseline DIR]

Builds two corpora under bench/out (once; delete them to rebuild):

- csv: 24 `nfdump -o csv` dumps (nfdump 1.7.x's 48-column csv, with its Summary trailer) of
  the lab nfcapd files (lab-dev and lab-mixed-dev, each file dumped by the real `nfdump`),
  repeated on later days with other addresses so that copies never share a window or a host:
  about 830 k flows, mostly DNS;
- real: `nfdump -o extended` of a real ISP nfcapd file (sampled transit traffic, 99% not DNS,
  `--real-nfcapd`, default the chrispassas `nfcapd-large-bz2` of the shared reference data),
  8 copies on later days: 800 k flows. Skipped when the file is not there.

Then, for each corpus, `--runs` times (figures are medians):

- ours: `flowtriage score DIR --all -o OUT.parquet -q` as a subprocess (the console script of
  this venv, with a config that points the label store at an empty temporary file and reads
  times as UTC): wall seconds, user+sys CPU seconds, peak RSS;
- the seed (csv corpus only): pandas.read_csv of every csv dump, the seven per-flow features,
  StandardScaler + KNeighborsClassifier(n_neighbors=1) trained on the bundled labelled
  samples. Its kNN predicts a few thousand rows/s, so it predicts a random sample of the rows
  and its time is extrapolated to all of them (the output says so).

With `--baseline DIR` (a checkout of an earlier flowtriage, e.g. `git archive main | tar -x -C
DIR`), the same command is timed from there too (`python -m engine score ...` run in DIR, with
this venv's libraries), interleaved with ours run by run, and the ratio printed.

And the start-up figures: `flowtriage --help`, `flowtriage CMD --help` for every command, and
time to first flow (`parse` and `score` of a one-flow dump, whole process), medians of 5.
The machine is shared: the load average is printed; compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.cli.commands import COMMAND_MODULES as COMMANDS  # noqa: E402

OUT = ROOT / "bench" / "out"
LAB = Path("/work/shared/data")
LAB_NFCAPD = [LAB / "lab-dev" / "nfcapd", LAB / "lab-mixed-dev" / "nfcapd"]
REAL_NFCAPD = LAB / "real" / "chrispassas" / "nfcapd-large-bz2"
FLOWTRIAGE = str(Path(sys.executable).parent / "flowtriage")
TIME = os.path.exists("/usr/bin/time")


def nfdump(path: Path, fmt: str) -> bytes:
    return subprocess.run(
        ["nfdump", "-r", str(path), "-o", fmt], check=True, capture_output=True
    ).stdout


def build_csv_corpus(nfiles: int = 24) -> Path:
    """`nfiles` csv dumps: the lab nfcapd files in rotation order, copy k on day 22+k with the
    127.x addresses moved to (10+k).x."""
    out = OUT / f"e2e-csv-{nfiles}"
    if out.is_dir() and len(list(out.iterdir())) == nfiles:
        return out
    out.mkdir(parents=True, exist_ok=True)
    sources = [p for d in LAB_NFCAPD for p in sorted(d.glob("nfcapd.*"))]
    texts = {p: nfdump(p, "csv") for p in sources}
    for i in range(nfiles):
        k, j = divmod(i, len(sources))
        src = sources[j]
        text = texts[src].replace(b"2026-11-22 ", f"2026-11-{22 + k:02d} ".encode())
        text = text.replace(b",127.", f",{10 + k}.".encode())
        stamp = src.name.split(".")[1].replace("20261122", f"202611{22 + k:02d}")
        (out / f"nfcapd.{stamp}.csv").write_bytes(text)
    return out


def build_real_corpus(nfcapd: Path, copies: int = 8) -> Path | None:
    if not nfcapd.exists():
        return None
    out = OUT / f"e2e-real-{copies}"
    if out.is_dir() and len(list(out.iterdir())) == copies:
        return out
    out.mkdir(parents=True, exist_ok=True)
    text = nfdump(nfcapd, "extended")
    day = text[text.index(b"\n") + 1 :][:10]  # the first flow's date, e.g. 2019-08-12
    for k in range(copies):
        moved = text.replace(day + b" ", f"2019-09-{1 + k:02d} ".encode())
        (out / f"nfcapd.201909{1 + k:02d}0000.txt").write_bytes(moved)
    return out


def bench_config(tmp: Path, checkout: Path = ROOT) -> Path:
    """A checkout's config with the label store in an empty temporary file and UTC times,
    so that the figures do not depend on this machine's labels or zone (a baseline gets its
    own: an older flowtriage refuses sections it does not know)."""
    text = (checkout / "config.toml").read_text()
    text = text.replace('db = ""', f'db = "{tmp / "labels.sqlite"}"', 1)
    text = text.replace('timezone = "local"', 'timezone = "UTC"', 1)
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.toml"
    path.write_text(text)
    return path


def run_timed(argv: list[str], cwd: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, user+sys CPU seconds and peak RSS (KiB) of one whole process.

    The RSS comes from /usr/bin/time (GNU time): a child's own ru_maxrss counts the memory of
    this (bigger) process it was forked from."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        timed = ["/usr/bin/time", "-o", rss.name, "-f", "%M", *argv] if TIME else argv
        t0 = time.perf_counter()
        proc = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status):
            err.seek(0)
            sys.exit(f"{' '.join(argv)} failed:\n{err.read().decode(errors='replace')}")
        peak = int(rss.read().split()[-1]) if TIME else usage.ru_maxrss
    return wall, usage.ru_utime + usage.ru_stime, peak


def median_of(runs: int, argv: list[str], cwd: Path | None = None) -> tuple[float, float, int]:
    results = [run_timed(argv, cwd) for _ in range(runs)]
    return (
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
        max(r[2] for r in results),
    )


def score_argv(corpus: Path, config: Path, out: Path) -> list[str]:
    return ["score", str(corpus.resolve()), "--all", "-o", str(out), "-q", "--config", str(config)]


def time_score(corpus: Path, config: Path, tmp: Path, runs: int, baseline: Path | None
               ) -> dict[str, tuple[float, float, int, int]]:
    """{"ours": (wall, cpu, peak KiB, flows), "baseline": ...}: medians, the two interleaved
    run by run so that both see the same load."""
    import polars as pl

    variants = {"ours": ([FLOWTRIAGE], None, config)}
    if baseline is not None:
        variants["baseline"] = ([sys.executable, "-m", "engine"], baseline,
                                bench_config(tmp / "baseline", baseline))
    results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in variants}
    for _ in range(runs):
        for name, (cmd, cwd, cfg) in variants.items():
            out = tmp / f"{corpus.name}-{name}.parquet"
            results[name].append(run_timed([*cmd, *score_argv(corpus, cfg, out)], cwd=cwd))
    figures = {}
    for name, rs in results.items():
        n = pl.scan_parquet(tmp / f"{corpus.name}-{name}.parquet").select(pl.len()).collect().item()
        figures[name] = (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs),
                         max(r[2] for r in rs), n)
    return figures


def report_score(figures: dict[str, tuple[float, float, int, int]], runs: int) -> None:
    for name, (wall, cpu, rss, n) in figures.items():
        print(f"  {name + ':':<9} flowtriage score DIR --all -o OUT.parquet: {n:,} flows in "
              f"{wall:.2f} s = {n / wall:,.0f} flows/s (median of {runs}); CPU {cpu:.2f} s; "
              f"peak RSS {rss / 1024:.0f} MB")
    if "baseline" in figures:
        print(f"  ours / baseline: {figures['baseline'][0] / figures['ours'][0]:.2f}x the rate "
              f"(CPU {figures['baseline'][1] / figures['ours'][1]:.2f}x less)")


def seed_model():
    from score import labelled_samples  # bench/score.py, beside this file
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    from engine.detect.features import seed_features

    train = labelled_samples()
    scaler = StandardScaler()
    knn = KNeighborsClassifier(n_neighbors=1)
    knn.fit(scaler.fit_transform(seed_features(train).to_numpy()), train["label"].to_numpy())
    return scaler, knn


def time_seed(corpus: Path, scaler, knn, sample: int) -> tuple[float, int, str]:
    """The seed: pandas reads each nfdump csv, computes the seven features, scales, 1-NN."""
    import pandas as pd

    cols = ["duration", "packets", "bytes", "pps", "bps", "Bpp", "flows"]
    t0 = time.perf_counter()
    parts = []
    for path in sorted(corpus.iterdir()):
        df = pd.read_csv(path, usecols=["ts", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt"],
                         low_memory=False)
        df = df.iloc[:-3]  # nfdump's Summary trailer: "Summary", its header, its values
        d = pd.to_numeric(df["td"])
        f = pd.DataFrame({"duration": d, "packets": pd.to_numeric(df["ipkt"]),
                          "bytes": pd.to_numeric(df["ibyt"])})
        f["pps"] = (f["packets"] / d).where(d > 0, 0.0)
        f["bps"] = (8 * f["bytes"] / d).where(d > 0, 0.0)
        f["Bpp"] = f["bytes"] / f["packets"].clip(lower=1)
        f["flows"] = 1.0
        parts.append(scaler.transform(f[cols].to_numpy()))
    X = np.concatenate(parts)
    t1 = time.perf_counter()
    rows = np.random.default_rng(0).choice(len(X), min(sample, len(X)), replace=False)
    knn.predict(X[rows])
    t2 = time.perf_counter()
    total = (t1 - t0) + (t2 - t1) * len(X) / len(rows)
    note = (f"read+features {t1 - t0:.2f} s on all {len(X):,} rows; kNN {t2 - t1:.2f} s on "
            f"{len(rows):,} sampled rows, extrapolated")
    return total, len(X), note


def _has_command(checkout: Path, first_arg: str) -> bool:
    """Whether an older checkout has this command (it may predate it)."""
    if first_arg.startswith("-"):
        return True
    return any((checkout / "engine" / sub / f"{first_arg}.py").exists()
               for sub in ("commands", "cli/commands"))


def startup(config: Path, tmp: Path, corpus: Path, baseline: Path | None) -> None:
    one = tmp / "one.csv"
    first = sorted(corpus.iterdir())[0].read_bytes().split(b"\n")
    one.write_bytes(b"\n".join(first[:2]) + b"\n")
    cases = [("flowtriage --help", ["--help"])]
    cases += [(f"flowtriage {c} --help", [c, "--help"]) for c in COMMANDS]
    cases += [
        ("parse one flow", ["parse", str(one), "-o", str(tmp / "p.csv"), "--config", str(config)]),
        ("score one flow", ["score", str(one), "-o", str(tmp / "s.csv"), "-q", "--config", str(config)]),
    ]
    for name, argv in cases:
        wall, cpu, rss = median_of(5, [FLOWTRIAGE, *argv])
        line = f"  {name:<28} {wall:6.3f} s wall  {cpu:6.3f} s cpu  {rss / 1024:5.0f} MB peak"
        if baseline is not None and _has_command(baseline, argv[0]):
            bwall, bcpu, _ = median_of(5, [sys.executable, "-m", "engine", *argv], cwd=baseline)
            line += f"   | baseline {bwall:6.3f} s wall  {bcpu:6.3f} s cpu"
        print(line, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each command (median)")
    ap.add_argument("--real-nfcapd", type=Path, default=REAL_NFCAPD)
    ap.add_argument("--seed-sample", type=int, default=10000, help="rows the seed kNN predicts")
    ap.add_argument("--skip-seed", action="store_true")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="a checkout of another flowtriage to time the same command from")
    ap.add_argument("--only", choices=("csv", "real", "startup"), action="append")
    args = ap.parse_args()
    only = set(args.only or ("csv", "real", "startup"))
    csv_corpus = build_csv_corpus()
    real_corpus = build_real_corpus(args.real_nfcapd)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other jobs inflate wall times")
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        config = bench_config(tmp)
        if "startup" in only:
            print("start-up (median of 5, whole process):")
            startup(config, tmp, csv_corpus, args.baseline)
        if "csv" in only:
            files = len(list(csv_corpus.iterdir()))
            print(f"csv corpus {csv_corpus} ({files} files):")
            figures = time_score(csv_corpus, config, tmp, args.runs, args.baseline)
            report_score(figures, args.runs)
            if not args.skip_seed:
                wall = figures["ours"][0]
                scaler, knn = seed_model()
                seeds = [time_seed(csv_corpus, scaler, knn, args.seed_sample) for _ in range(args.runs)]
                seed = statistics.median(s[0] for s in seeds)
                print(f"  seed: {seeds[0][1]:,} flows in {seed:.1f} s = {seeds[0][1] / seed:,.0f} flows/s "
                      f"(median of {args.runs}; {seeds[0][2]})")
                print(f"  ratio: ours is {seed / wall:.1f}x the seed pipeline end to end")
                if "baseline" in figures:
                    print(f"  ratio: the baseline is {seed / figures['baseline'][0]:.1f}x the seed")
        if "real" in only and real_corpus is not None:
            files = len(list(real_corpus.iterdir()))
            print(f"real corpus {real_corpus} ({files} files, extended):")
            report_score(time_score(real_corpus, config, tmp, args.runs, args.baseline), args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
