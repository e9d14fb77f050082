"""Do verdicts hold on sampled exports? Real tunnel captures and the real ISP minute, sampled
by us, scored with a model.

    python scripts/sampled_eval.py [--shared ../shared/data] [--model M] [--rate 10]

Two forms of 1:N sampling, because exporters print them differently:

- thinned: softflowd's own sampling (`-s N`: one packet in N) into nfcapd 1.7.1, which prints
  the sampled packets as they are (counts not multiplied): the traffic at a tenth of its rate;
- multiplied: the same flows with packet and byte counts multiplied by N, as routers that
  report scaled counts print them (chrispassas' ISP transit file is 1:3000 in this form);
  flowtriage infers the rate per dump and divides it back.

For each real tunnel capture (every DNS flow is tunnel) it prints the tunnel recall on port-53
flows, unsampled and in both sampled forms; for the ISP minute (no pcap: flows only) the
multiplied form, with the share of port-53 flows flagged.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_real_samples import SHARED, SOURCES, replay_softflowd  # noqa: E402
from corpora import ROOT  # noqa: E402

from engine.ingest import read_flows  # noqa: E402

DNS = (pl.col("src_port") == 53) | (pl.col("dst_port") == 53)


def dump(directory: Path, out: Path) -> Path:
    text = subprocess.run(["nfdump", "-R", str(directory), "-o", "extended"], check=True,
                          capture_output=True).stdout
    out.write_bytes(text)
    return out


def recall(model, flows: pl.DataFrame) -> str:
    scored = model.score(flows).filter(DNS)
    caught = int((scored["verdict"] == "tunnel").sum())
    anyv = int((scored["verdict"] != "normal").sum())
    return f"{caught}/{scored.height} tunnel, {anyv}/{scored.height} any"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--model", type=Path, default=ROOT / "engine" / "models" / "default.skops")
    ap.add_argument("--rate", type=int, default=10)
    args = ap.parse_args()
    from engine.config.settings import load_config
    from engine.models.store import load_model

    model = load_model(args.model).use_config(load_config(ROOT / "engine" / "config" / "defaults.toml"))
    n = args.rate
    with tempfile.TemporaryDirectory() as tmp:
        for source in SOURCES:
            if source.kind != "pcap" or source.truth.__name__ != "truth_dns_tunnel":
                continue
            pcap = args.shared / source.inputs[0]
            rows = []
            for label, rate in (("unsampled", 1), (f"thinned 1:{n}", n)):
                work = Path(tmp) / f"{source.name}-{rate}"
                replay_softflowd(pcap, work, sampling=rate)
                flows, _ = read_flows([dump(work, Path(tmp) / f"{source.name}-{rate}.txt")], timezone="UTC")
                rows.append(f"{label}: {recall(model, flows)}")
                if rate == 1:
                    multiplied = flows.with_columns(pl.col("packets") * n, pl.col("bytes") * n)
                    rows.append(f"multiplied 1:{n}: {recall(model, multiplied)}")
            print(f"{source.name:<26} " + "; ".join(rows))
    isp = sorted((ROOT / "data/samples/real-isp-minute/routerlike").glob("*.txt.gz"))
    flows, _ = read_flows(isp, timezone="UTC")
    for label, frame in (("unsampled", flows),
                         (f"multiplied 1:{n}", flows.with_columns(pl.col("packets") * n, pl.col("bytes") * n))):
        scored = model.score(frame).filter(DNS)
        flagged = int((scored["verdict"] != "normal").sum())
        print(f"{'real-isp-minute':<26} {label}: port-53 flagged {flagged}/{scored.height}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
