"""The drill-down's `nfdump -R DIR -t WINDOW 'FILTER'` finds the same flow in the binary files
(real nfdump 1.7.1 on a real nfcapd fixture), and refuses to build a command from a non-address."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from datetime import datetime

import pytest

from engine.core.schema import PROTO_NAMES
from engine.ingest import read_dump
from tests.conftest import FIXTURES
from tui.nfdump import flow_filter, is_address, nfdump_command, time_window

BINARY = FIXTURES / "nfcapd" / "lab-dev-202611220835.nfcapd"


@pytest.mark.nfdump
@pytest.mark.skipif(shutil.which("nfdump") is None, reason="nfdump is not installed")
def test_the_command_shows_the_same_flow_from_the_binary_file(tmp_path):
    env = {**os.environ, "TZ": "UTC"}
    binaries = tmp_path / "nfcapd"
    binaries.mkdir()
    shutil.copyfile(BINARY, binaries / "nfcapd.202611220835")
    text = tmp_path / "nfcapd.202611220835.txt"
    with open(text, "w") as out:
        subprocess.run(["nfdump", "-r", str(binaries / "nfcapd.202611220835"), "-o", "extended"],
                       stdout=out, check=True, env=env)
    flows = read_dump(text, final=True, timezone="UTC").flows
    for row in (flows.row(100, named=True), flows.row(flows.height // 2, named=True)):
        command = nfdump_command(row, binaries)
        argv = shlex.split(command) + ["-o", "csv", "-q"]
        found = subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout.splitlines()
        assert found, command
        ports = {(line.split(",")[5], line.split(",")[6]) for line in found}
        assert (str(row["src_port"]), str(row["dst_port"])) in ports or (
            str(row["dst_port"]), str(row["src_port"])) in ports


def test_the_window_covers_the_flow_in_whole_seconds():
    first, last = datetime(2026, 11, 22, 8, 35, 59, 900_000), datetime(2026, 11, 22, 8, 36, 0, 100_000)
    assert time_window(first, last) == "2026/11/22.08:35:59-2026/11/22.08:36:01"
    assert time_window(first, None) == "2026/11/22.08:35:59-2026/11/22.08:36:00"


def test_filters_are_only_built_from_addresses():
    row = {"src_addr": "10.0.0.1", "dst_addr": "2001:db8..2", "src_port": 5353, "dst_port": 53, "proto": "UDP"}
    assert flow_filter(row) == "host 10.0.0.1 and host 2001:db8..2 and port 5353 and port 53 and proto udp"
    icmp = {**row, "proto": "ICMP", "src_port": 0, "dst_port": 771}
    assert flow_filter(icmp) == "host 10.0.0.1 and host 2001:db8..2 and proto icmp"
    for bad in ("10.0.0.1 or any", "x'; rm -rf ~; '", "10.0.0.1\x1b]0;t\x07", "", None, "1.2.3.4/8"):
        assert not is_address(bad)
        with pytest.raises(ValueError):
            flow_filter({**row, "src_addr": bad})


@pytest.mark.nfdump
@pytest.mark.skipif(shutil.which("nfdump") is None, reason="nfdump is not installed")
def test_every_protocol_a_flow_prints_gives_a_filter_nfdump_reads():
    base = {"src_addr": "10.0.0.1", "dst_addr": "10.0.0.2", "src_port": 0, "dst_port": 0}
    for proto in [*PROTO_NAMES.values(), "200"]:
        text = flow_filter({**base, "proto": proto})
        assert "proto" in text, proto
        assert subprocess.run(["nfdump", "-Z", text], capture_output=True).returncode == 0, text
    assert flow_filter({**base, "proto": "HOST"}).endswith("proto 61")
    assert flow_filter({**base, "proto": "EGP"}).endswith("proto egp")
