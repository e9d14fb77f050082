"""`flowtriage score` end to end on a real, mostly non-DNS dump: scoped (the default) against
today's code path (every flow through the models), in the same run.

The dump is the bundled real ISP minute (data/samples/real-isp-minute: 3,018 flows, a third
of them port 53) repeated on `--copies` other days, as one extended file. Each configuration
runs the real command as a user runs it (`python -m engine score DUMP --all -o OUT.parquet`,
a fresh process each time, imports included); the median of `--repeat` runs is reported.

- today: `[scope] filter = "any"`: every flow through features and models, the code path
  before scope existed (sampling is inferred both ways, so in-scope flows can be compared);
- scoped: the shipped defaults (`port 53`, ICMP errors about DNS pairs, port-53 probers).

It also checks what scope promises: every in-scope flow gets the same verdict and score both
ways (its window context is the same), and no out-of-scope flow is flagged.

    python bench/scope.py [--copies 40] [--repeat 3] [--dump DUMP.txt]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SOURCE = ROOT / "data" / "samples" / "real-isp-minute" / "routerlike"
TRAILER = (b"Summary:", b"Time window:", b"Total flows processed:", b"Sys:")
CONFIGS = {
    "today": '[scope]\nfilter = "any"\n[ingest]\ntimezone = "UTC"\n',
    "scoped": '[ingest]\ntimezone = "UTC"\n',
}


def build_dump(copies: int, source: Path | None = None) -> Path:
    """`source` (an extended dump, plain or .gz; default the bundled ISP minute) repeated on
    `copies` other days."""
    OUT.mkdir(parents=True, exist_ok=True)
    if source is None:
        (source,) = sorted(SOURCE.glob("*.txt.gz"))
    path = OUT / f"scope-bench-{source.name.split('.')[0]}-{copies}x.txt"
    if path.exists():
        return path
    raw = source.read_bytes()
    lines = (gzip.decompress(raw) if source.suffix == ".gz" else raw).split(b"\n")
    header, body = lines[0], b"\n".join(ln for ln in lines[1:] if ln and not ln.startswith(TRAILER))
    first = lines[1][:11]  # "YYYY-MM-DD " of the first flow
    with open(path, "wb") as fh:
        fh.write(header + b"\n")
        for k in range(copies):
            day = f"{first[:4].decode()}-{1 + k // 28:02d}-{1 + k % 28:02d} ".encode()
            fh.write(body.replace(first, day) + b"\n")
    return path


def run(dump: Path, name: str) -> tuple[float, Path]:
    cfg = OUT / f"scope-bench-{name}.toml"
    cfg.write_text(CONFIGS[name])
    out = OUT / f"scope-bench-{name}.parquet"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine", "score", str(dump), "--all", "-q", "-o", str(out),
                    "--config", str(cfg)], check=True, cwd=ROOT)
    return time.perf_counter() - start, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dump", type=Path, help="an extended dump to repeat instead of the bundled ISP minute "
                    "(e.g. `nfdump -r nfcapd-large-bz2 -o extended`: 100k sampled transit flows, 1%% DNS)")
    args = ap.parse_args()
    import polars as pl

    dump = build_dump(args.copies, args.dump)
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    outs: dict[str, Path] = {}
    for _ in range(args.repeat):
        for name in CONFIGS:  # interleaved: load on the shared machine hits both alike
            seconds, outs[name] = run(dump, name)
            times[name].append(seconds)
    today, scoped = (pl.read_parquet(outs[n]) for n in ("today", "scoped"))
    flows = today.height
    print(f"dump: {dump.relative_to(ROOT)}: {flows} flows, "
          f"{today.filter((pl.col('src_port') == 53) | (pl.col('dst_port') == 53)).height} port 53")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:<7} median {med:6.2f} s  {flows / med:9.0f} flows/s   runs {', '.join(f'{v:.2f}' for v in values)}")
    ratio = statistics.median(times["today"]) / statistics.median(times["scoped"])
    print(f"  scoped is {ratio:.1f}x today's rate")
    out = scoped["reasons"].str.starts_with("out of scope")
    inside = ~out
    same = (today.filter(inside)["verdict"] == scoped.filter(inside)["verdict"]).all() and (
        (today.filter(inside)["score"] - scoped.filter(inside)["score"]).abs().max() or 0.0) < 1e-9
    print(f"  in scope {int(inside.sum())} flows: same verdicts and scores both ways: {same}; "
          f"out of scope {int(out.sum())}: flagged {int((scoped.filter(out)['verdict'] != 'normal').sum())}")
    print(f"  flagged: today {int((today['verdict'] != 'normal').sum())}, scoped "
          f"{int((scoped['verdict'] != 'normal').sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
