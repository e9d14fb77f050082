"""Derive the real-traffic sample corpora (data/samples/real-*) from the shared reference data.

    python scripts/build_real_samples.py [--shared ../shared/data] [--only NAME]...

Needs nfdump 1.7 (`nfdump`, `nfpcapd`, `nfcapd`) and, for the router shape of the pcaps,
`softflowd`. For every source below it writes

    data/samples/<name>/<shape>/<name>-<shape>.<YYYYMMDDhhmm>.txt.gz   nfdump -o extended
    data/samples/<name>/<shape>-labels.csv.gz                          file,line,label
    data/samples/<name>/README.md                                      provenance and truth

Shapes: `nfpcapd` (a pcap replayed by nfpcapd -t 60: one flow per UDP DNS packet) and
`routerlike` (the pcap replayed by softflowd, NetFlow v10, 60 s maximum flow life, into
nfcapd; or a Zeek log converted to one flow per direction of each connection, as a router
exports). Dump names carry the corpus and shape, so labels files (keyed by dump name and line)
never collide when several corpora are trained on at once.

Truth comes from each source's README in ../shared/data/real-world (restated per corpus
below): it is applied to the flows as parsed by flowtriage, so `line` is the line flowtriage
reports. Only derived dumps are written (no pcaps); the wheel ships them, so they stay small.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.ingest import read_flows  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
DNS = (pl.col("src_port") == 53) | (pl.col("dst_port") == 53)


def _either(addr: str) -> pl.Expr:
    return (pl.col("src_addr") == addr) | (pl.col("dst_addr") == addr)


def truth_all_normal(flows: pl.DataFrame) -> pl.Series:
    return pl.Series("label", ["normal"] * flows.height, dtype=pl.String)


def truth_dns_tunnel(flows: pl.DataFrame) -> pl.Series:
    """Tunnel captures: every DNS flow is the tunnel; anything else (ARP-less captures carry a
    few ICMP or NTP packets) is ordinary."""
    return flows.select(pl.when(DNS).then(pl.lit("tunnel")).otherwise(pl.lit("normal")).alias("label"))["label"]


def truth_xscan(flows: pl.DataFrame) -> pl.Series:
    """X-Scan: every flow of the scanner 192.168.1.125 (probes and the target's replies)."""
    return flows.select(pl.when(_either("192.168.1.125")).then(pl.lit("scan"))
                        .otherwise(pl.lit("normal")).alias("label"))["label"]


def truth_nmap(flows: pl.DataFrame) -> pl.Series:
    """sdft002: 172.16.1.11 scans 172.16.1.0/24, 192.168.1.0/24 and 10.0.2.0/24 (and, in the
    capture, 0.0.0.4); its DNS with 8.8.8.8 (nmap's reverse lookups) is ordinary resolver
    traffic. Every other flow of the scanner is scan."""
    scanner = "172.16.1.11"
    resolver = (pl.col("src_addr") == "8.8.8.8") | (pl.col("dst_addr") == "8.8.8.8")
    scan = _either(scanner) & ~resolver
    return flows.select(pl.when(scan).then(pl.lit("scan")).otherwise(pl.lit("normal")).alias("label"))["label"]


def truth_ctu(uniflows: str) -> Callable[[pl.DataFrame], pl.Series]:
    """CTU-Normal-40: Stratosphere labels the inbound Internet probes 'Malicious'; per the
    README a source is a port scan only when it touches many ports or hosts. Flows (both
    directions) of a Malicious source that reaches at least three targets (address and port)
    are scan; the single-port background probes, Benign and Background flows are normal."""
    def truth(flows: pl.DataFrame) -> pl.Series:
        raw = pl.read_csv(SHARED / uniflows)
        bad = raw.filter(pl.col("label").str.starts_with("Malicious") & (pl.col("dir") == "fwd"))
        scanners = (bad.group_by("src").agg(pl.struct("dst", "dport").n_unique().alias("targets"))
                    .filter(pl.col("targets") >= 3)["src"].implode())
        scan = pl.col("src_addr").is_in(scanners) | pl.col("dst_addr").is_in(scanners)
        return flows.select(pl.when(scan).then(pl.lit("scan")).otherwise(pl.lit("normal")).alias("label"))["label"]
    return truth


SHARED = Path(os.environ.get("FLOWTRIAGE_SHARED", ROOT.parent / "shared" / "data"))


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # "pcap" (both shapes replayed here) or "nfcapd" (given files, routerlike)
    inputs: tuple[str, ...]  # relative to --shared
    truth: Callable[[pl.DataFrame], pl.Series]
    train: bool  # part of the bundled model's training set
    about: str
    # nfdump filter for a smaller derived dump: only the port-53 flows and every flow that
    # shares an address with one (their window context), as flowtriage's scope would use them
    reduce: bool = False


SOURCES: tuple[Source, ...] = (
    Source("real-wrccdc", "nfcapd", ("real-world/wrccdc2018_dnslog/nfcapd/nfcapd.202612041300",),
           truth_all_normal, True,
           "WRCCDC 2018 enterprise DNS, 21 min, Zeek dns.log (brimdata/zed-sample-data @ 8da0758e, "
           "CC BY-SA 4.0): one flow per query and per answer, bytes estimated from names and "
           "answers. Truth: benign-dominated enterprise DNS, labelled normal (a competition "
           "network: red-team lookups may hide in it; no per-flow truth exists)."),
    Source("real-ctu-day008", "nfcapd", ("real-world/ctu_normal40_labeled/day008/nfcapd/nfcapd.202612041300",),
           truth_ctu("real-world/ctu_normal40_labeled/day008/ctu40_008.uniflows.csv"), True,
           "CTU-Normal-40 day 8 (stratosphereips/security-datasets-for-testing @ 1c90a369, GPL-2.0): "
           "one university host for 24 h with its Internet background, Zeek conn.log, one flow per "
           "direction. Truth: Benign/Background per Stratosphere are normal; of the inbound "
           "'Malicious' probes (~1,500 sources a day), the flows of a source that reaches three or "
           "more targets (address and port) are scan (README: a port scan only when one source "
           "touches many ports or hosts), the single-port background probes normal."),
    Source("real-ctu-day010", "nfcapd", ("real-world/ctu_normal40_labeled/day010/nfcapd/nfcapd.202612041300",),
           truth_ctu("real-world/ctu_normal40_labeled/day010/ctu40_010.uniflows.csv"), True,
           "CTU-Normal-40 day 10 (as day 8)."),
    Source("real-nmap", "nfcapd", ("real-world/sdft002_nmap_portscan/nfcapd/nfcapd.202612041300",),
           truth_nmap, True,
           "Stratosphere scenario 002 (security-datasets-for-testing @ 1c90a369, GPL-2.0): nmap "
           "scans of three /24s by 172.16.1.11 with its ordinary DNS to 8.8.8.8, Zeek conn.log. "
           "Truth: the scanner's flows with the three scanned /24s are scan; the rest normal."),
    Source("real-xscan", "pcap", ("real-world/xscan_vulnscan/pcap/xscan_capture.pcap",),
           truth_xscan, True,
           "X-Scan vulnerability/port scan (markofu/pcaps @ 437d6691, EvilFingers/XScan.zip; no "
           "licence stated): 192.168.1.125 probes 235 ports of 192.168.1.120, TCP/53 included. "
           "Truth: every flow of 192.168.1.125 is scan."),
    Source("real-dnscat2-ndpi", "pcap",
           ("real-world/ndpi_dnscat2_direct/pcap/default__pcap__dns_exfiltration.pcap",),
           truth_dns_tunnel, True,
           "dnscat2 direct-mode tunnel, 60 s (ntop/nDPI @ 3b1286ab, tests/cfgs/default/pcap/"
           "dns_exfiltration.pcap, LGPL-3.0). Truth: every DNS flow is tunnel."),
    Source("real-iodine-ndpi", "pcap",
           ("real-world/ndpi_iodine_2010/pcap/default__pcap__dns-tunnel-iodine.pcap",),
           truth_dns_tunnel, True,
           "iodine handshake and data, 24 s, 2010 (ntop/nDPI @ 3b1286ab, LGPL-3.0; the same file "
           "as real/elastic-iodine). Truth: every DNS flow is tunnel."),
    *(Source(f"real-{tool}-dmachard", "pcap", (f"real-world/dmachard_tunnel_samples/pcap/{tool}.pcap",),
             truth_dns_tunnel, True,
             f"{tool} lab capture, 2023 (dmachard/datasets-malicious-dns @ b8f90deb, no licence "
             "stated). Truth: every DNS flow is tunnel.")
      for tool in ("dns2tcp", "dnscat2", "dnsextrator", "iodine", "sods")),
    Source("real-isp-minute", "nfcapd", ("real/chrispassas/nfcapd.sample",),
           truth_all_normal, False,
           "One real minute of an ISP's NetFlow export, 2023 (chrispassas, MIT): 3,018 flows, "
           "1,028 port 53, IPv6, sampled. Truth: none per flow; ordinary traffic, labelled normal."),
    Source("real-isp-transit", "nfcapd", ("real/chrispassas/nfcapd-large-bz2",),
           truth_all_normal, True,
           "100,000 sampled (1:3000) transit flows of an ISP, 2019 (chrispassas, MIT). Reduced to "
           "the 1,075 port-53 flows and every flow sharing an address with one (their context): "
           "nfdump -r FILE 'ip in [those addresses]'. Truth: none per flow; ordinary traffic, "
           "labelled normal.", reduce=True),
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replay_nfpcapd(pcap: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["nfpcapd", "-r", str(pcap), "-w", str(out), "-t", "60"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return sorted(p for p in out.iterdir() if p.name.startswith("nfcapd.") and "current" not in p.name)


def replay_softflowd(pcap: Path, out: Path, sampling: int = 1) -> list[Path]:
    """softflowd reads the pcap (60 s maximum flow life) into an nfcapd on a loopback port,
    stopped by its pid once softflowd has exited and the last datagrams are in."""
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    collector = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(out), "-t", "3600"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        cmd = ["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", "10", "-A", "milli",
               "-d", "-c", "none", "-t", "maxlife=60", "-p", str(out / "softflowd.pid")]
        if sampling > 1:
            cmd += ["-s", str(sampling)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        time.sleep(2.0)
    finally:
        collector.terminate()
        collector.wait(timeout=30)
    return sorted(p for p in out.iterdir() if p.name.startswith("nfcapd.") and "current" not in p.name)


def _reduced(src: Path, tmp: Path) -> Path:
    """An nfcapd file of the port-53 flows of `src` and every flow sharing an address with one."""
    tmp.mkdir(parents=True, exist_ok=True)
    text = subprocess.run(["nfdump", "-6", "-r", str(src), "-q", "-o", "fmt:%sa %da", "port 53"],
                          check=True, capture_output=True, text=True).stdout
    addrs = sorted({a for row in text.split() for a in [row.strip()] if a})
    out = tmp / "nfcapd.reduced"
    subprocess.run(["nfdump", "-r", str(src), "-w", str(out), f"ip in [{' '.join(addrs)}]"], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def dump_to(nfcapd_files: list[Path], dest: Path, prefix: str) -> list[Path]:
    """nfdump -o extended of each file, named <prefix>.<YYYYMMDDhhmm of its first flow>."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for src in nfcapd_files:
        text = subprocess.run(["nfdump", "-r", str(src), "-o", "extended"], check=True,
                              capture_output=True).stdout
        lines = text.splitlines()
        if len(lines) < 2 or not lines[1][:4].isdigit():
            continue  # no flows in this rotation
        stamp = lines[1][:16].decode().replace("-", "").replace(" ", "").replace(":", "")
        path = dest / f"{prefix}.{stamp}.txt.gz"
        n = 1
        while path.exists():
            n += 1
            path = dest / f"{prefix}.{stamp}-{n}.txt.gz"
        with gzip.open(path, "wb", compresslevel=9) as fh:
            fh.write(text)
        written.append(path)
    return written


def labels_for(files: list[Path], truth: Callable[[pl.DataFrame], pl.Series]) -> pl.DataFrame:
    flows, _ = read_flows(files, timezone="UTC")
    label = truth(flows)
    return pl.DataFrame({
        "file": flows["file"].map_elements(lambda f: Path(f).name.removesuffix(".gz"), return_dtype=pl.String),
        "line": flows["line"],
        "label": label,
    })


def build(source: Source, shared: Path, tmp: Path) -> list[str]:
    corpus = SAMPLES / source.name
    if corpus.exists():
        shutil.rmtree(corpus)
    shapes: dict[str, list[Path]] = {}
    for rel in source.inputs:
        src = shared / rel
        if source.kind == "pcap":
            shapes.setdefault("nfpcapd", []).extend(replay_nfpcapd(src, tmp / source.name / "nfpcapd"))
            shapes.setdefault("routerlike", []).extend(replay_softflowd(src, tmp / source.name / "routerlike"))
        elif source.reduce:
            shapes.setdefault("routerlike", []).append(_reduced(src, tmp / source.name))
        else:
            shapes.setdefault("routerlike", []).append(src)
    summary = []
    for shape, raw in shapes.items():
        files = dump_to(raw, corpus / shape, f"{source.name}-{shape}")
        labels = labels_for(files, source.truth)
        with gzip.open(corpus / f"{shape}-labels.csv.gz", "wb", compresslevel=9) as fh:
            labels.write_csv(fh)
        counts = ", ".join(f"{k} {v}" for k, v in labels["label"].value_counts(sort=True).iter_rows())
        summary.append(f"| `{shape}` | {len(files)} | {labels.height} | {counts} |")
    readme = [
        f"# {source.name}", "",
        f"provenance: {source.about}", "",
        f"Derived by `scripts/build_real_samples.py` from `../shared/data/{', '.join(source.inputs)}` "
        f"({'nfpcapd -t 60 and softflowd -v 10 -t maxlife=60 into nfcapd' if source.kind == 'pcap' else 'the nfcapd file as given'}), "
        "dumped with nfdump 1.7.1 `-o extended`.",
        f"Trained on by `scripts/train_default_model.py`: {'yes' if source.train else 'no (evaluation only)'}.",
        "", "| shape | dumps | flows | labels |", "| --- | --- | --- | --- |", *summary, "",
    ]
    (corpus / "README.md").write_text("\n".join(readme))
    return summary


def main() -> int:
    global SHARED
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=None)
    ap.add_argument("--only", action="append", help="build only this corpus (repeatable)")
    args = ap.parse_args()
    SHARED = args.shared or SHARED
    with tempfile.TemporaryDirectory() as tmp:
        for source in SOURCES:
            if args.only and source.name not in args.only:
                continue
            for line in build(source, SHARED, Path(tmp)):
                print(f"{source.name:<24} {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
