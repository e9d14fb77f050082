"""Conformance: our compiled filters select exactly the flows the real nfdump 1.7 selects.

Both sides see the same real binary nfcapd files (tests/fixtures/nfcapd, provenance in
tests/fixtures/README.md); nfdump's side is `nfdump -R DIR -o json FILTER`. Our side gets the
flows two ways: from `nfdump -o json` of every flow mapped to the canonical columns here (an
oracle independent of engine.ingest: full addresses, exact counters), and end to end from
`nfdump -o extended` text read by engine.ingest (what flowtriage really sees). Flows are
identified by nfdump's record counter (`-o fmt:%cnt`, 1-based, in read order: row i of
`-o json` and of `-o extended` is record i + 1).

Known, explained disagreements are asserted to be exactly what the explanation predicts:
- records that end before they start (668 in the chrispassas sample): nfdump computes the
  duration as an unsigned difference, so they have a huge duration there and a negative one here.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from datetime import datetime

import polars as pl
import pytest

from engine.config.settings import Config
from engine.core.schema import FLOW_SCHEMA, PROTO_NAMES
from engine.detect.rules import FilterError, RuleSet, compile_filter
from engine.filters.language import PROTO_NUMBERS, Proto, format_filter, parse_filter
from engine.ingest import parse_bytes
from tests import nfdump_harness as nh
from tests.conftest import FIXTURES

NFDUMP = shutil.which("nfdump")
NFCAPD_DIR = FIXTURES / "nfcapd"

pytestmark = [
    pytest.mark.nfdump,
    pytest.mark.skipif(NFDUMP is None, reason="needs the real nfdump binary"),
]


def nfdump_records() -> list[dict]:
    cmd = [str(NFDUMP), "-R", str(NFCAPD_DIR), "-o", "json"]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


@functools.cache
def theirs(filter_text: str) -> frozenset[int]:
    """0-based indices of the records nfdump selects."""
    cmd = [str(NFDUMP), "-R", str(NFCAPD_DIR), "-q", "-o", "fmt:%cnt", filter_text]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return frozenset(int(n) - 1 for n in out.split() if n.isdigit())


def canonical_flows(records: list[dict]) -> pl.DataFrame:
    rows = []
    for i, r in enumerate(records):
        first = datetime.fromisoformat(r["first"])
        last = datetime.fromisoformat(r["last"])
        icmp = "icmp_type" in r
        rows.append(
            {
                "ts_first": first,
                "ts_last": last,
                "duration": (last - first).total_seconds(),  # negative when last < first
                "proto": PROTO_NAMES.get(r["proto"], str(r["proto"])),
                "src_addr": r.get("src4_addr") or r.get("src6_addr"),
                # nfdump keeps ICMP type and code in the destination port: type * 256 + code
                "src_port": 0 if icmp else r.get("src_port"),
                "dst_port": r["icmp_type"] * 256 + r["icmp_code"] if icmp else r.get("dst_port"),
                "dst_addr": r.get("dst4_addr") or r.get("dst6_addr"),
                "tcp_flags": r.get("tcp_flags", "........"),
                "tos": r.get("src_tos", 0),
                "packets": r["in_packets"],
                "bytes": r["in_bytes"],
                "flows": 1,
                "approx": False,
                "file": "oracle",
                "line": i,  # the record index, as nfdump counts (0-based here)
            }
        )
    return pl.DataFrame(rows, schema=FLOW_SCHEMA)


@pytest.fixture(scope="module")
def corpus() -> pl.DataFrame:
    flows = canonical_flows(nfdump_records())
    assert flows.height == 3018 + 6583 + 8735 + 10
    return flows


def ours(flows: pl.DataFrame, text: str) -> frozenset[int]:
    return frozenset(flows.filter(compile_filter(text))["line"].to_list())


DEFAULT_RULES = [rc.filter for rc in Config().rules]

# Filters both sides must agree on exactly. (ours, nfdump's) when nfdump lacks our spelling.
AGREE: list[str | tuple[str, str]] = [
    *DEFAULT_RULES,
    "any",
    "proto udp and src port 53",
    "proto tcp",
    "proto 17",
    "proto icmp",
    "proto icmp6",
    "proto udp or proto tcp",
    "port 53",
    "src port 53",
    "dst port 53",
    "not port 53",
    "port in [53 443 853]",
    "src port > 1023 and dst port < 1024",
    "src and dst port 53",
    "src or dst port 53",
    "src and dst net 127.40.0.0/16",
    "port 771",  # ICMP port unreachable: nfdump keeps type 3, code 3 in the dst port, as 3*256+3
    "net 10.0.0.0/8",
    "net 127.10.0.0/16",
    "src net 127.40.160.0/19",
    "dst net 192.168.0.0 255.255.0.0",
    "net 170.80.156.0/22",
    "host 127.40.4.10",
    "src ip 127.10.66.7",
    "dst host 170.80.156.33",
    "ip in [127.10.0.53 127.40.4.0/24]",
    "ipv6",
    "ipv4",
    "host 2804:3714:2::d",
    "src ip 2a03:2880:f259:c8:face:b00c:0:167",
    "net 2804:3714::/32",
    "dst net fe80::/10",
    "net 2001:620::/32",
    "packets > 1k",
    "packets > 1",
    "packets = 1",
    "bytes > 1000",
    "bytes <= 40",
    "bytes ge 1k and bytes lt 2k",
    "flows > 1",
    "flags S and not flags A",
    "flags A",
    "flags SA",
    "flags X",
    "flags > 16",
    "flags 2",
    "bpp < 100",
    "bpp > 1000",
    "bpp = 28",
    "pps > 10",
    "pps = 0",
    "bps > 10k",
    "bps > 1m",
    "duration = 0",
    "tos > 0",
    "tos 184",
    "not (proto udp or proto tcp)",
    "proto udp and not (src port 53 or dst port 53)",
    "(port 53 and bytes > 500) or (flags S and packets > 1)",
    ("packets => 2", "packets >= 2"),
    ("proto udp && port 53 || proto tcp", "proto udp and port 53 or proto tcp"),
    ("! port 53", "not port 53"),
]

# Filters whose disagreement is explained; the value names the rows allowed to differ.
DURATION_WRAPS = "flows that end before they start (nfdump: unsigned, huge duration)"
EXPLAINED: dict[str, str] = {
    "duration > 1000": DURATION_WRAPS,
    "duration < 100": DURATION_WRAPS,
    "duration >= 1": DURATION_WRAPS,
}


def _pair(item: str | tuple[str, str]) -> tuple[str, str]:
    return item if isinstance(item, tuple) else (item, item)


@pytest.mark.parametrize("item", AGREE, ids=lambda i: _pair(i)[0][:60])
def test_filter_selects_what_nfdump_selects(corpus, item):
    mine, nfdumps = _pair(item)
    got, want = ours(corpus, mine), theirs(nfdumps)
    assert got == want, f"{mine!r}: ours {len(got)}, nfdump {len(want)}, differ {len(got ^ want)}"


@pytest.mark.parametrize("text", list(EXPLAINED))
def test_explained_disagreements_are_only_the_explained_rows(corpus, text):
    got, want = ours(corpus, text), theirs(text)
    wrapped = set(corpus.filter(pl.col("ts_last") < pl.col("ts_first"))["line"].to_list())
    assert got ^ want, "no longer disagrees: move it to AGREE"
    assert got ^ want <= wrapped


def test_the_corpus_exercises_the_rules(corpus):
    """Guard against a vacuous pass: the real data fires most rules and many primitives."""
    labels = RuleSet.from_config(Config().rules).apply(corpus)["rule_label"]
    assert {"amplification", "zero_packet", "tunnel"} <= set(labels.drop_nulls().to_list())
    counts = {text: len(theirs(text)) for text in ("ipv6", "flags S and not flags A", "pps > 10", "tos > 0")}
    assert all(n > 0 for n in counts.values()), counts


# Our error cases that nfdump rejects too (it has no position, only "syntax error at ..."),
# and spellings both accept. Our extensions (=>, C/E flags) are left out on purpose.
REJECTED_BY_BOTH = [
    "packets > x", "prot udp", "port 53)", "(port 53", ")", "port 53 and", "port 53 or or port 54",
    "not", "port 53 port 54", "proto xyz", "proto", "port 70000", "ip 10.0.0", "net 10.0.0.0",
    "flags SZ", "bytes != 3", "duration > 1.5", "bytes = = 1", "port in [53",
]
ACCEPTED_BY_BOTH = [
    "", "any", "PROTO Udp AND NOT Src Port 53", "proto udp && ! src port 53", "packets gt 1K",
    "bytes < 0x3e8", "net 10.1.2.99/24", "ip in [10.1.2.3 172.16.0.0/16]", "flags 2", "inet6",
    "src tos > 0", "port in [ 53, 853 ]", "port 53 # comment", "dst host 2001:db8::35",
]


def nfdump_accepts(text: str) -> bool:
    return subprocess.run([str(NFDUMP), "-Z", text], capture_output=True).returncode == 0


@pytest.mark.parametrize("text", REJECTED_BY_BOTH)
def test_what_we_reject_nfdump_rejects(text):
    with pytest.raises(FilterError):
        compile_filter(text)
    assert not nfdump_accepts(text)


@pytest.mark.parametrize("text", ACCEPTED_BY_BOTH)
def test_what_nfdump_accepts_we_accept(text):
    compile_filter(text)
    assert nfdump_accepts(text)


# ---------------------------------------------------------------------------- end to end via ingest

@pytest.fixture(scope="module", params=[(), ("-6",)], ids=["extended", "extended-6"])
def ingested(corpus, request) -> pl.DataFrame:
    """The same flows as an nfdump text dump read by engine.ingest, in record order: the default
    `-o extended`, and with `-6` (full IPv6 addresses instead of `..`-shortened ones)."""
    text = subprocess.run(
        [str(NFDUMP), *request.param, "-R", str(NFCAPD_DIR), "-o", "extended"], capture_output=True, check=True
    ).stdout
    flows = parse_bytes(text, file="fixtures.txt", final=True).flows
    assert flows.height == corpus.height and flows["line"].is_sorted()
    shortened = flows.filter(pl.col("src_addr").str.contains("..", literal=True)).height
    assert (shortened == 0) == (request.param == ("-6",))
    # Row i of the dump is record i: number the rows the way ours() and theirs() count.
    return flows.with_columns(line=pl.int_range(pl.len(), dtype=pl.Int64))


def allowed_to_differ(oracle: pl.DataFrame, flows: pl.DataFrame, text: str) -> set[int]:
    """Rows whose text form loses what `text` looks at, so nfdump (reading binary) may differ."""
    rows = flows["approx"]  # counters printed scaled ("1.6 M") are approximate
    if "duration" in text:  # end-before-start records: nfdump huge, ingest 0
        rows = rows | (oracle["ts_last"] < oracle["ts_first"])
    if ":" in text:  # an IPv6 literal: `..`-shortened addresses cannot match
        shortened = [flows[c].str.contains("..", literal=True) for c in ("src_addr", "dst_addr")]
        rows = rows | shortened[0] | shortened[1]
    return set(rows.arg_true().to_list())


@pytest.mark.parametrize("item", AGREE + list(EXPLAINED), ids=lambda i: _pair(i)[0][:60])
def test_through_ingest_only_text_losses_differ(corpus, ingested, item):
    mine, nfdumps = _pair(item)
    differing = ours(ingested, mine) ^ theirs(nfdumps)
    unexplained = differing - allowed_to_differ(corpus, ingested, mine)
    assert not unexplained, f"{mine!r}: {len(unexplained)} unexplained differences"


# ---------------------------------------------------------------------------- every protocol number

@pytest.fixture(scope="module")
def every_protocol(tmp_path_factory):
    """A real nfcapd file with one flow per IP protocol number 0..255, bytes = 100 + number."""
    if nh.NFCAPD is None:
        pytest.skip(nh.MISSING_REASON)
    (path,) = nh.run_nfcapd_v5(tmp_path_factory.mktemp("every-protocol"), nh.V5_EVERY_PROTOCOL)
    return path


def _numbers_nfdump_selects(path, text: str) -> set[int]:
    cmd = [str(NFDUMP), "-r", str(path), "-q", "-o", "fmt:%byt", text]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {int(n) - 100 for n in out.split()}


def test_the_protocol_filter_we_print_selects_that_protocol_in_nfdump(every_protocol):
    for number in range(256):
        text = format_filter(Proto(number))
        assert parse_filter(text) == Proto(number), text
        assert _numbers_nfdump_selects(every_protocol, text) == {number}, text


def test_protocol_names_select_what_nfdump_selects(every_protocol):
    cmd = [str(NFDUMP), "-r", str(every_protocol), "-o", "json"]
    records = json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout)
    flows = canonical_flows(records).with_columns(number=pl.col("bytes") - 100)
    refused = set()
    for name in sorted({n.lower() for n in PROTO_NAMES.values()}):
        text = f"proto {name}"
        if not nfdump_accepts(text):
            refused.add(name)
            continue
        want = _numbers_nfdump_selects(every_protocol, text)
        if name == "idpr":
            # 35 and 38 both print IDPR: the flows' text cannot tell them apart, nfdump's can
            assert want == {35}
            want = {35, 38}
        assert set(flows.filter(compile_filter(text))["number"]) == want, text
    # nfdump's keywords, and names its scanner splits: we read all but a/n ('/' is a prefix)
    assert refused == {"xnet", "ipv6", "host", "net", "mpls", "tp++", "a/n"}
    for name in refused - {"a/n"}:
        number = PROTO_NUMBERS[name]
        assert set(flows.filter(compile_filter(f"proto {name}"))["number"]) == {number}, name
    with pytest.raises(FilterError):
        compile_filter("proto a/n")
