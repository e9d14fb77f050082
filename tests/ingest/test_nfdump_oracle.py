"""The conformance oracle itself, checked against what nfdump 1.7.1 prints elsewhere.

The parser conformance tests (test_conformance_nfdump.py) trust `nfdump -o json` read with
Python's json module. These tests make sure that trust is earned on the same files: json agrees
with nfdump's own Summary totals, the capture exercises what it claims to, and the IPv6
shortening rule matches what nfdump really prints.
"""

from __future__ import annotations

import pytest

from engine.core.schema import PROTO_NAMES
from tests import nfdump_harness as nh

pytestmark = [
    pytest.mark.nfdump,
    pytest.mark.skipif(None in (nh.NFDUMP, nh.NFPCAPD, nh.NFCAPD), reason=nh.MISSING_REASON),
]

EXTENDED = next(f for f in nh.FORMATS if f.id == "extended")
CSV = next(f for f in nh.FORMATS if f.id == "csv")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return nh.NfcapdSources(tmp_path_factory.mktemp("oracle"))


@pytest.mark.parametrize("source", nh.SOURCES)
def test_json_totals_equal_nfdump_summary(sources, source):
    for nfcapd_file in sources.files(source):
        want = sources.oracle(nfcapd_file)
        summary = nh.summary_of(nh.run_nfdump(nfcapd_file, "-o", "csv"))
        assert summary is not None
        assert (summary.flows, summary.packets, summary.bytes) == (
            want.height,
            want["packets"].sum(),
            want["bytes"].sum(),
        ), nfcapd_file.name


def test_synthetic_capture_spans_rotations_and_shapes(sources):
    files = sources.files("synthetic")
    assert len(files) >= 3, [f.name for f in files]
    flows = [sources.oracle(f) for f in files]
    every = flows[0].vstack(flows[1]) if len(flows) > 1 else flows[0]
    for more in flows[2:]:
        every = every.vstack(more)
    assert set(every["proto"]) >= {"UDP", "TCP", "ICMP", "ICMP6"}
    assert every["bytes"].max() >= 2_000_000  # printed `2.1 M` without -N
    assert 999_999 in every["bytes"].to_list() and 1_000_000 in every["bytes"].to_list()
    udp53 = every.filter(proto="UDP", src_port=53)
    assert udp53["bytes"].max() > 900 and udp53["bytes"].min() <= 45
    assert (
        every.filter(proto="TCP")["tcp_flags"].is_in(["...AP.SF", "...A.R..", "CE....S."]).sum()
        >= 4
    )
    assert (every["dst_port"] == 3 * 256 + 13).any()  # ICMP 3.13 folded
    assert nh.V6_LONG_A in every["src_addr"].to_list()


def test_shortened_ipv6_rule_matches_nfdump(sources):
    files = (
        sources.files("synthetic")
        + sources.files("nfdump-tmp_v6.nfcapd")
        + sources.files("chrispassas-sample.nfcapd")
    )
    checked = 0
    for nfcapd_file in files:
        want = sources.oracle(nfcapd_file)
        text = nh.run_nfdump(nfcapd_file, "-o", "line").decode().split("\n")[1:]
        for full, line in zip(want["src_addr"], text, strict=False):
            token = line.split()[4] if line.count(" -> ") == 1 else ""
            if ".." in token:
                printed = token.rsplit(".", 1)[0]  # src port after the last dot
                assert nh.shortened_matches(printed, full), (printed, full)
                assert len(printed) == 16 and printed == f"{full[:7]}..{full[-7:]}"
                checked += 1
    assert checked > 10


def test_scale_tolerance_is_half_the_last_printed_digit():
    values = nh.pl.Series([999_999, 1_000_000, 1_296_000, 2_500_000_000])
    assert nh.scale_tolerance(values, EXTENDED).to_list() == [0.0, 50_000.0, 50_000.0, 50_000_000.0]
    assert nh.scale_tolerance(values, CSV).to_list() == [0.0] * 4


def test_netflow_v5_file_holds_every_record_with_big_counters(sources):
    (nfcapd_file,) = sources.files("netflow-v5")
    want = sources.oracle(nfcapd_file)
    assert want.height == len(nh.V5_RECORDS)
    assert want["packets"].max() == 4_294_967_295 and want["bytes"].max() == 4_294_967_295
    # nfcapd reads a v5 record whose end precedes its start as an uptime wrap: 49 days long,
    # printed with a day prefix (`49d 17:02:28.296`)
    assert (want["duration"] > 49 * 86400).sum() == 1
    assert set(want["tcp_flags"]) >= {"CEUAPRSF", "...AP.SF"}


def test_protocol_name_table_is_what_nfdump_prints(sources):
    (nfcapd_file,) = sources.files("netflow-v5-protocols")
    rows = [
        line.split(",")
        for line in nh.run_nfdump(nfcapd_file, "-q", "-o", "csv").decode().splitlines()
    ]
    printed = {int(row[12]) - 100: row[7].strip() for row in rows}  # ibyt = 100 + number
    assert len(printed) == 256
    assert printed == {n: PROTO_NAMES.get(n, str(n)) for n in range(256)}


def test_installed_nfdump_is_the_version_the_matrix_describes():
    # FORMATS, the csv precision and the protocol table describe nfdump 1.7.0-1.7.5 (Debian 12
    # ships 1.7.1); 1.7.6 changed csv and added csv-fast/ndjson, so the matrix needs extending.
    major, minor, patch = (int(x) for x in nh.nfdump_version().split("."))
    assert (major, minor) == (1, 7) and patch <= 5, nh.nfdump_version()
