"""Throughput of RuleSet.apply (the five default rules) against hand-written polars, same run.

Flows: the real fixture nfcapd files (tests/fixtures/nfcapd, 18,346 flows read via
`nfdump -o json`), tiled to --rows. Baseline: the five rules written by hand as polars
expressions, the best a compiler could emit. Figures are best-of --repeat wall-clock seconds.

    python bench/rules_bench.py [--rows 2000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from datetime import datetime
from pathlib import Path

import polars as pl

from engine.config.settings import Config
from engine.core.schema import FLOW_SCHEMA, PROTO_NAMES
from engine.detect.rules import RuleSet
from engine.filters.language import compile_filter

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "nfcapd"


def real_flows() -> pl.DataFrame:
    out = subprocess.run(
        ["nfdump", "-R", str(FIXTURES), "-o", "json"], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for i, r in enumerate(json.loads(out)):
        first, last = datetime.fromisoformat(r["first"]), datetime.fromisoformat(r["last"])
        rows.append(
            {
                "ts_first": first, "ts_last": last, "duration": (last - first).total_seconds(),
                "proto": PROTO_NAMES.get(r["proto"], str(r["proto"])),
                "src_addr": r.get("src4_addr") or r.get("src6_addr"), "src_port": r.get("src_port", 0),
                "dst_addr": r.get("dst4_addr") or r.get("dst6_addr"), "dst_port": r.get("dst_port", 0),
                "tcp_flags": r.get("tcp_flags", "........"), "tos": r.get("src_tos", 0),
                "packets": r["in_packets"], "bytes": r["in_bytes"], "flows": 1, "approx": False,
                "file": "bench", "line": i + 1,
            }
        )
    return pl.DataFrame(rows, schema=FLOW_SCHEMA)


def hand_written() -> list[pl.Expr]:
    udp, tcp = pl.col("proto") == "UDP", pl.col("proto") == "TCP"
    sp, dp, pk, by = pl.col("src_port") == 53, pl.col("dst_port") == 53, pl.col("packets"), pl.col("bytes")
    either = sp | dp
    return [
        (udp & sp & (pk > 1000)) | (udp & sp & (pk < 1001) & (by > 900)),
        tcp & dp & (pk >= 1) & (by == 58),
        (udp | tcp) & either & (pk >= 1) & (by <= 40),
        (udp | tcp) & sp & (pk >= 1) & (by == 45),
        (udp | tcp) & either & (pk >= 1) & (by >= 151) & (by <= 160),
    ]


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    base = real_flows()
    flows = pl.concat([base] * (args.rows // base.height + 1)).head(args.rows).rechunk()
    rules = Config().rules
    ruleset = RuleSet.from_config(rules)
    compiled = [compile_filter(rc.filter) for rc in rules]
    hand = hand_written()

    # The compiler must agree with the hand-written rules before its speed means anything.
    got = flows.select([e.alias(str(i)) for i, e in enumerate(compiled)])
    want = flows.select([e.alias(str(i)) for i, e in enumerate(hand)])
    assert got.equals(want), "compiled rules disagree with the hand-written ones"

    n = flows.height
    t_hand = best(lambda: flows.select([e.alias(str(i)) for i, e in enumerate(hand)]), args.repeat)
    t_comp = best(lambda: flows.select([e.alias(str(i)) for i, e in enumerate(compiled)]), args.repeat)
    t_apply = best(lambda: ruleset.apply(flows), args.repeat)
    t_v6 = best(lambda: flows.filter(compile_filter("net 2804:3714::/32")), args.repeat)
    t_v4 = best(lambda: flows.filter(compile_filter("net 127.40.160.0/19")), args.repeat)

    print(f"flows: {n:,} (real fixture flows tiled), best of {args.repeat}")
    print(f"hand-written polars, 5 rule masks : {t_hand:8.3f} s  {n / t_hand:14,.0f} flows/s  (baseline)")
    print(f"compiled filters,    5 rule masks : {t_comp:8.3f} s  {n / t_comp:14,.0f} flows/s  ratio {t_comp / t_hand:5.2f}x")
    print(f"RuleSet.apply (label,names,sev)   : {t_apply:8.3f} s  {n / t_apply:14,.0f} flows/s  ratio {t_apply / t_hand:5.2f}x")
    print(f"filter 'net 127.40.160.0/19'      : {t_v4:8.3f} s  {n / t_v4:14,.0f} flows/s")
    print(f"filter 'net 2804:3714::/32' (IPv6): {t_v6:8.3f} s  {n / t_v6:14,.0f} flows/s")


if __name__ == "__main__":
    main()
