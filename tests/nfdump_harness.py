"""Drive the real nfdump 1.7.1 binaries for the conformance tests, and read its json as the oracle.

Nothing here mocks nfdump: pcaps are written byte by byte, turned into nfcapd files by the real
`nfpcapd`, and printed by the real `nfdump`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from engine.core.schema import PROTO_NAMES

# --- pcap writing -----------------------------------------------------------------------------

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
_MAC_A = bytes.fromhex("020000000001")
_MAC_B = bytes.fromhex("020000000002")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


TCP_FLAG_BITS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
}


@dataclass
class PcapBuilder:
    """Ethernet frames carrying IPv4/IPv6 with UDP, TCP, ICMP or ICMPv6, checksums included."""

    frames: list[tuple[float, bytes]] = field(default_factory=list)

    def _ip(self, src: str, dst: str, proto: int, l4: bytes, tos: int = 0) -> bytes:
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        if s.version == 4:
            header = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                tos,
                20 + len(l4),
                0,
                0x4000,
                64,
                proto,
                0,
                s.packed,
                d.packed,
            )
            header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
            return b"\x08\x00" + header + l4
        header = struct.pack(
            "!IHBB16s16s", (6 << 28) | (tos << 20), len(l4), proto, 64, s.packed, d.packed
        )
        return b"\x86\xdd" + header + l4

    def _pseudo(self, src: str, dst: str, proto: int, length: int) -> bytes:
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        if s.version == 4:
            return s.packed + d.packed + struct.pack("!BBH", 0, proto, length)
        return s.packed + d.packed + struct.pack("!IxxxB", length, proto)

    def add(self, t: float, src: str, dst: str, proto: int, l4: bytes, tos: int = 0) -> None:
        self.frames.append((t, _MAC_B + _MAC_A + self._ip(src, dst, proto, l4, tos)))

    def udp(self, t, src, sport, dst, dport, payload: bytes = b"", tos: int = 0) -> None:
        length = 8 + len(payload)
        raw = struct.pack("!HHHH", sport, dport, length, 0) + payload
        csum = _checksum(self._pseudo(src, dst, 17, length) + raw) or 0xFFFF
        self.add(t, src, dst, 17, raw[:6] + struct.pack("!H", csum) + raw[8:], tos)

    def tcp(
        self, t, src, sport, dst, dport, flags: str, payload: bytes = b"", seq: int = 1
    ) -> None:
        bits = sum(TCP_FLAG_BITS[c] for c in flags)
        raw = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, bits, 65535, 0, 0) + payload
        csum = _checksum(self._pseudo(src, dst, 6, len(raw)) + raw)
        self.add(t, src, dst, 6, raw[:16] + struct.pack("!H", csum) + raw[18:])

    def icmp(self, t, src, dst, icmp_type: int, code: int, payload: bytes = b"") -> None:
        v6 = ipaddress.ip_address(src).version == 6
        raw = struct.pack("!BBHI", icmp_type, code, 0, 0x00010001) + payload
        pseudo = self._pseudo(src, dst, 58, len(raw)) if v6 else b""
        csum = _checksum(pseudo + raw)
        self.add(t, src, dst, 58 if v6 else 1, raw[:2] + struct.pack("!H", csum) + raw[4:])

    def write(self, path: Path) -> Path:
        out = bytearray(_PCAP_HEADER)
        for t, frame in sorted(self.frames, key=lambda f: f[0]):
            sec = int(t)
            usec = round((t - sec) * 1_000_000)
            out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
        path.write_bytes(bytes(out))
        return path


# --- the synthetic capture ----------------------------------------------------------------------

T0 = 1710072000.0  # 2024-03-10 12:00:00 UTC
ROTATION_S = 60  # nfpcapd -t: the capture spans four rotations
V6_LONG_A = "2001:db8:1234:5678:9abc:def0:1234:5678"  # printed as 2001:db..34:5678
V6_LONG_B = "2001:db8:ffff:eeee:dddd:cccc:bbbb:aaaa"
V6_RESOLVER = "2001:db8::53"  # short enough to print in full
RESOLVER = "198.51.100.53"


def _dns_payload(txid: int, size: int) -> bytes:
    """A DNS-looking message of exactly `size` bytes (nfpcapd counts bytes, it does not decode)."""
    header = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0)
    return (header + b"\x07example\x03com\x00\x00\x01\x00\x01" + b"\0" * size)[:size]


def build_capture() -> PcapBuilder:
    """Every shape the parser must read, spread over ~200 s so nfpcapd writes several files.

    - UDP DNS over IPv4 and IPv6 (long addresses), answers from 12 to 1452 bytes (nfpcapd 1.7.1
      writes one flow per UDP/53 packet);
    - DNS over TCP with a full handshake (S, SA, PA, FA) and a refused one (S then RA);
    - bulk TCP flows of 1,296,000 / 1,000,000 / 999,999 bytes (nfdump's `x.y M` threshold)
      and a 2 MB IPv6 one, aggregated by nfpcapd because they are not UDP/53;
    - ICMP and ICMPv6 with several type/code pairs (folded into the destination port);
    - a UDP flow with TOS 0x20, and a slow TCP keepalive flow crossing rotations.
    """
    b = PcapBuilder()
    t = T0 + 1.0
    # UDP DNS, IPv4 and IPv6: query then answer 3.2 ms later
    sizes = [12, 33, 45, 140, 155, 512, 901, 1232, 1452]
    for i, size in enumerate(sizes * 4):
        client, server, cport = (
            ("192.0.2.10", RESOLVER, 40000 + i)
            if i % 2 == 0
            else (V6_LONG_A, V6_RESOLVER, 40000 + i)
        )
        b.udp(t, client, cport, server, 53, _dns_payload(i, 33))
        b.udp(t + 0.0032, server, 53, client, cport, _dns_payload(i, size))
        t += 4.7
    # DNS over TCP (IPv4 and IPv6, long addresses on both ends)
    for k, (client, server) in enumerate(
        [("192.0.2.11", RESOLVER), (V6_LONG_A, V6_LONG_B), ("192.0.2.12", RESOLVER)]
    ):
        s = T0 + 5.0 + 50.0 * k
        cport = 41000 + k
        b.tcp(s, client, cport, server, 53, "S")
        b.tcp(s + 0.001, server, 53, client, cport, "SA")
        b.tcp(s + 0.002, client, cport, server, 53, "A")
        b.tcp(s + 0.003, client, cport, server, 53, "PA", _dns_payload(k, 35))
        for seg in range(3):
            b.tcp(s + 0.010 + seg * 0.001, server, 53, client, cport, "PA", _dns_payload(k, 1400))
        b.tcp(s + 0.020, client, cport, server, 53, "FA")
        b.tcp(s + 0.021, server, 53, client, cport, "FA")
        b.tcp(s + 0.022, client, cport, server, 53, "A")
    b.tcp(T0 + 30.0, "192.0.2.13", 41100, RESOLVER, 53, "S")
    b.tcp(T0 + 30.0004, RESOLVER, 53, "192.0.2.13", 41100, "RA")
    b.tcp(T0 + 31.0, "192.0.2.13", 41101, RESOLVER, 53, "SEC")  # ECN-setup SYN
    # bulk TCP: 900 x 1440 = 1.3 M; 1000 x 1000 = exactly 1.0 M; 999,999 stays unscaled
    for i in range(900):
        b.tcp(T0 + 10 + i * 0.05, "203.0.113.5", 50000, "192.0.2.80", 443, "PA", b"z" * 1400)
    for i in range(1000):
        b.tcp(T0 + 70 + i * 0.03, "203.0.113.6", 50001, "192.0.2.80", 443, "A", b"z" * 960)
    for i in range(1000):
        last = i == 999
        b.tcp(
            T0 + 70 + i * 0.03,
            "203.0.113.7",
            50002,
            "192.0.2.80",
            443,
            "A",
            b"z" * (959 if last else 960),
        )
    for i in range(1400):
        b.tcp(T0 + 130 + i * 0.02, V6_LONG_B, 443, V6_LONG_A, 50003, "A", b"z" * 1420)
    # ICMP / ICMPv6: (type, code)
    for j, (ty, code) in enumerate([(8, 0), (0, 0), (3, 3), (11, 0), (3, 13)]):
        b.icmp(T0 + 40 + j, "192.0.2.10", RESOLVER, ty, code, b"p" * (56 + j))
    for j, (ty, code) in enumerate([(128, 0), (129, 0), (1, 4), (3, 0), (135, 0)]):
        b.icmp(T0 + 100 + j, V6_LONG_A, V6_RESOLVER if j % 2 else V6_LONG_B, ty, code, b"p" * 56)
    # UDP with TOS, aggregated (not port 53): 60 packets over 12 s
    for i in range(60):
        b.udp(T0 + 20 + i * 0.2, "192.0.2.20", 5004, "192.0.2.30", 5004, b"r" * 172, tos=0x20)
    # IPv6 spellings at the edges of nfdump's 16-character condensing, and ports 0 / 65535
    edge_pairs = [
        ("2001:db8:0:1::ab", "2001:db8:0:1::abc"),  # 16 characters: in full; 17: condensed
        ("2001:db8::", "::1"),  # trailing '::' before the '.port'
        ("64:ff9b::c000:201", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
    ]
    for k, (a, c) in enumerate(edge_pairs):
        b.udp(T0 + 50 + k, a, 0, c, 53, _dns_payload(k, 40))
        b.udp(T0 + 50.5 + k, c, 53, a, 65535, _dns_payload(k, 950))
    # a slow keepalive flow crossing rotations
    for i in range(12):
        b.tcp(T0 + 3 + i * 17.0, "192.0.2.40", 51000, "192.0.2.41", 22, "A", b"k" * 48)
    return b


def build_mapped_capture() -> PcapBuilder:
    """IPv6 addresses that print with a dotted IPv4 tail (`::ffff:192.168.100.200`, condensed
    to `::ffff:..100.200`), as destination and source, over UDP/53 and ICMPv6."""
    b = PcapBuilder()
    mapped, short_mapped, peer = "::ffff:192.168.100.200", "::ffff:192.0.2.1", "fe80::1"
    for k, addr in enumerate((mapped, short_mapped)):
        b.udp(T0 + 1 + k, addr, 40000 + k, peer, 53, _dns_payload(k, 40))
        b.udp(T0 + 1.5 + k, peer, 53, addr, 40000 + k, _dns_payload(k, 950))
        b.icmp(T0 + 3 + k, peer, addr, 1, 4, b"p" * 48)
    return b


# --- running the real binaries -------------------------------------------------------------------

NFDUMP = shutil.which("nfdump")
NFPCAPD = shutil.which("nfpcapd")
MISSING_REASON = (
    "the real nfdump, nfpcapd and nfcapd binaries are not on PATH "
    "(CI installs Debian's nfdump package; locally: apt-get install nfdump)"
)
_ENV = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}


def nfdump_version() -> str:
    out = subprocess.run([NFDUMP, "-V"], capture_output=True, text=True, env=_ENV, check=True)
    m = re.search(r"([0-9]+\.[0-9]+\.[0-9]+)", out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


def run_nfpcapd(pcap: Path, outdir: Path, rotation_s: int = ROTATION_S) -> list[Path]:
    """pcap -> nfcapd files, one per rotation window that saw a flow end, sorted by name."""
    outdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [NFPCAPD, "-r", str(pcap), "-w", str(outdir), "-t", str(rotation_s)],
        capture_output=True,
        env=_ENV,
        check=True,
        timeout=60,
    )
    return sorted(p for p in outdir.iterdir() if p.name.startswith("nfcapd.") and p.stat().st_size)


def run_nfdump(nfcapd_file: Path, *args: str) -> bytes:
    """nfdump's stdout as bytes; stderr (e.g. 'Skip unknown record type 9') is not part of a dump.

    A directory is read whole (`-R DIR`): one dump, one header and one Summary for all files.
    """
    read = "-R" if nfcapd_file.is_dir() else "-r"
    out = subprocess.run(
        [NFDUMP, read, str(nfcapd_file), *args],
        capture_output=True,
        env=_ENV,
        check=True,
        timeout=60,
    )
    return out.stdout


@dataclass(frozen=True)
class DumpFormat:
    """One way an operator can print an nfcapd file that flowtriage claims to read."""

    id: str
    args: tuple[str, ...]
    kind: str  # "text" (fixed columns), "csv" or "json"
    plain: bool = False  # -N: numbers unscaled (and, in 1.7.1 text output, duration in seconds)
    full_v6: bool = False  # line6/long6/extended6: IPv6 addresses never shortened
    has_flags: bool = True  # prints tcp flags and tos

    @property
    def ts_unit(self) -> str:
        # 1.7.1's csv prints ts/te to the second (truncated); everything else to the millisecond
        return "1s" if self.kind == "csv" else "1ms"


def _text_formats() -> list[DumpFormat]:
    formats = []
    for base in ("line", "long", "extended", "biline", "bilong"):
        # biline/bilong have no full-IPv6 variant; their counts are split Out/In per direction
        for six in ("", "6") if not base.startswith("bi") else ("",):
            for plain in (False, True):
                args = ("-o", base + six, *(("-N",) if plain else ()))
                fid = base + six + ("-N" if plain else "")
                formats.append(
                    DumpFormat(
                        fid,
                        args,
                        "text",
                        plain,
                        bool(six),
                        has_flags=base not in ("line", "biline"),
                    )
                )
    return formats


# -N changes nothing in csv and json (checked against 1.7.1), so each is dumped once.
FORMATS: tuple[DumpFormat, ...] = (
    *_text_formats(),
    DumpFormat("csv", ("-o", "csv"), "csv", plain=True, full_v6=True),
    DumpFormat("json", ("-o", "json"), "json", plain=True, full_v6=True),
)
# What nfdump 1.7.1 also prints but flowtriage does not claim to read (see the report):
# raw, pipe, gline, glong, nsel, nel, null, fmt:<user format>.


NFCAPD = shutil.which("nfcapd")
V5_EXPORT_S = 1710072600  # 2024-03-10 12:10:00 UTC, the exporter's clock in the v5 header
_V5_UPTIME_MS = 1_000_000


def _v5_record(src, dst, sport, dport, proto, pkts, octets, flags=0, tos=0, ago=(30_000, 1_000)):
    """One NetFlow v5 record; `ago` = (first, last) in ms before export (last > first: inverted)."""
    first, last = (_V5_UPTIME_MS - ago[0], _V5_UPTIME_MS - ago[1])
    return struct.pack(
        "!4s4s4sHHIIIIHHBBBBHHBBH",
        ipaddress.ip_address(src).packed,
        ipaddress.ip_address(dst).packed,
        bytes(4),
        1,
        2,
        pkts,
        octets,
        first,
        last,
        sport,
        dport,
        0,
        flags,
        proto,
        tos,
        0,
        0,
        0,
        0,
        0,
    )


# Counters no capture of test size reaches: packets and bytes in M and G, nfdump's `1000.0 M`
# just under its G threshold, 32-bit maxima, an ICMP type/code carried in the v5 dst port, a
# TOS byte, all eight TCP flags, and a record ending before it starts (nfcapd takes it for an
# uptime wrap and makes it 49 days long, printed with a day prefix).
V5_RECORDS = (
    _v5_record("198.51.100.53", "192.0.2.99", 53, 4444, 17, 1_234_567, 3_950_000_000),
    _v5_record("10.1.1.1", "10.2.2.2", 80, 50000, 6, 999_999, 4_294_967_295, flags=0x1B, tos=0xB8),
    _v5_record("10.1.1.3", "10.2.2.4", 0, 0x0303, 1, 2_000_000, 112_000_000),
    _v5_record("198.51.100.53", "192.0.2.98", 53, 5555, 17, 1, 45, tos=4, ago=(5, 5)),
    _v5_record("10.1.1.5", "10.2.2.6", 5000, 6000, 17, 1_000_000, 999_999_999),
    _v5_record("10.1.1.7", "10.2.2.8", 443, 40000, 6, 4_294_967_295, 999_949_999, flags=0xFF),
    _v5_record("10.1.1.9", "10.2.2.10", 53, 53, 17, 3, 180, ago=(1_000, 20_000)),
)

# One flow per IP protocol number 0..255 (bytes = 100 + number, so each row names its number).
V5_EVERY_PROTOCOL = tuple(
    _v5_record("10.9.0.1", "10.9.0.2", 0, 0, proto, 1, 100 + proto) for proto in range(256)
)


def v5_datagrams(records) -> list[bytes]:
    """NetFlow v5 export datagrams carrying `records` (at most 30 per datagram)."""
    out = []
    for start in range(0, len(records), 30):
        batch = records[start : start + 30]
        header = struct.pack(
            "!HHIIIIBBH", 5, len(batch), _V5_UPTIME_MS, V5_EXPORT_S, start, 1, 0, 0, 0
        )
        out.append(header + b"".join(batch))
    return out


# NetFlow v9 with 64-bit counters, which v5 cannot carry: bytes in T, packets in G and T, and
# 2**62 bytes (sums stay within Int64). Template 256: IN_BYTES(8) IN_PKTS(8) PROTOCOL
# L4_SRC_PORT IPV4_SRC_ADDR L4_DST_PORT IPV4_DST_ADDR FIRST_SWITCHED LAST_SWITCHED TCP_FLAGS
# SRC_TOS.
_V9_FIELDS = (
    (1, 8),
    (2, 8),
    (4, 1),
    (7, 2),
    (8, 4),
    (11, 2),
    (12, 4),
    (22, 4),
    (21, 4),
    (6, 1),
    (5, 1),
)


def _v9_record(src, dst, sport, dport, proto, pkts, octets, flags=0, tos=0, ago=(30_000, 1_000)):
    return struct.pack(
        "!QQBH4sH4sIIBB",
        octets,
        pkts,
        proto,
        sport,
        ipaddress.ip_address(src).packed,
        dport,
        ipaddress.ip_address(dst).packed,
        _V5_UPTIME_MS - ago[0],
        _V5_UPTIME_MS - ago[1],
        flags,
        tos,
    )


V9_RECORDS = (
    _v9_record("10.3.0.1", "10.3.0.2", 443, 50000, 6, 2_500_000_000, 3_456_789_012_345, 0x12),
    _v9_record("10.3.0.3", "10.3.0.4", 53, 53, 17, 999_999_999, 999_999_999_999, tos=46),
    _v9_record("10.3.0.5", "10.3.0.6", 53, 1234, 17, 12_345_678_901_234, 2**62),
    _v9_record("10.3.0.7", "10.3.0.8", 53, 5353, 17, 1_000_000_000, 1_000_000_000_000),
)


def v9_datagram(records=V9_RECORDS) -> bytes:
    template = struct.pack("!HH", 256, len(_V9_FIELDS)) + b"".join(
        struct.pack("!HH", kind, size) for kind, size in _V9_FIELDS
    )
    data = b"".join(records)
    data += bytes(-len(data) % 4)
    return (
        struct.pack("!HHIIII", 9, 1 + len(records), _V5_UPTIME_MS, V5_EXPORT_S, 1, 0)
        + struct.pack("!HH", 0, 4 + len(template))
        + template
        + struct.pack("!HH", 256, 4 + len(data))
        + data
    )


def run_nfcapd(outdir: Path, datagrams: list[bytes], n_records: int, timeout_s=20.0) -> list[Path]:
    """Send export datagrams to a real nfcapd on loopback; return the file it writes.

    nfcapd -E prints each record it decodes, which tells us when it has them all; it writes
    and closes its file when terminated.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # -E output is block-buffered into a pipe: ask for line buffering where coreutils has it
    stdbuf = shutil.which("stdbuf")
    proc = subprocess.Popen(
        [*((stdbuf, "-oL") if stdbuf else ()), NFCAPD, "-E", "-b", "127.0.0.1", "-p", str(port)]
        + ["-w", str(outdir), "-t", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_ENV,
    )
    deadline = time.monotonic() + timeout_s
    try:
        local = f"0100007F:{port:04X}"
        while not any(local in line for line in Path("/proc/net/udp").read_text().split("\n")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nfcapd did not bind 127.0.0.1:{port}")
            time.sleep(0.01)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for datagram in datagrams:
                sender.sendto(datagram, ("127.0.0.1", port))
        seen = b""
        # nfcapd decodes a datagram whole before it looks at signals, so one printed record
        # of the last datagram means all will be in the file it writes on exit
        while seen.count(b"Flow Record:") < (n_records if stdbuf else 1):
            ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                raise RuntimeError(f"nfcapd decoded {seen.count(b'Flow Record:')} of {n_records}")
            seen += chunk
    finally:
        proc.terminate()
        proc.communicate(timeout=timeout_s)
    return sorted(p for p in outdir.iterdir() if p.name.startswith("nfcapd.") and p.stat().st_size)


def run_nfcapd_v5(outdir: Path, records=V5_RECORDS) -> list[Path]:
    return run_nfcapd(outdir, v5_datagrams(records), len(records))


# --- the oracle: nfdump's own json ---------------------------------------------------------------

ICMP_PROTOCOLS = (1, 58)
UNSET_FLAGS = "........"  # json omits tcp_flags where csv and text print eight dots (ICMP)
_SCALE_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"))  # nfdump's format_number, 1.7.1




def oracle_flows(nfcapd_file: Path) -> pl.DataFrame:
    """The flows of `nfcapd_file` as `nfdump -o json` states them, in canonical columns.

    json carries full IPv6 addresses, unscaled counts and millisecond timestamps, so it is the
    most exact of nfdump's outputs. Conventions applied to match the canonical columns:
    - ICMP/ICMPv6: json prints icmp_type/icmp_code (no ports); canonical src_port is 0 and
      dst_port is type*256+code, as nfdump's csv prints it (text prints `type.code`);
    - tcp_flags absent (ICMP) means no flag set, printed `........` elsewhere;
    - flows that end before they start (exporter clock bugs) are expected clamped as
      engine.ingest documents: duration 0 and ts_last = ts_first; `inverted` marks them.
    """
    records = json.loads(run_nfdump(nfcapd_file, "-o", "json") or b"[]")
    rows = []
    for rec in records:
        proto = int(rec["proto"])
        if proto in ICMP_PROTOCOLS and "icmp_type" in rec:
            src_port, dst_port = 0, int(rec["icmp_type"]) * 256 + int(rec.get("icmp_code", 0))
        else:
            src_port, dst_port = int(rec.get("src_port", 0)), int(rec.get("dst_port", 0))
        rows.append(
            {
                "first": rec["first"],
                "last": rec["last"],
                "proto": PROTO_NAMES.get(proto, str(proto)),
                "src_addr": rec.get("src4_addr") or rec.get("src6_addr"),
                "src_port": src_port,
                "dst_addr": rec.get("dst4_addr") or rec.get("dst6_addr"),
                "dst_port": dst_port,
                "tcp_flags": rec.get("tcp_flags", UNSET_FLAGS),
                "tos": int(rec.get("src_tos", 0)),
                "packets": int(rec["in_packets"]),
                "bytes": int(rec["in_bytes"]),
                "flows": int(rec.get("aggr_flows", 1)),
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "first": pl.String,
            "last": pl.String,
            "proto": pl.String,
            "src_addr": pl.String,
            "src_port": pl.Int32,
            "dst_addr": pl.String,
            "dst_port": pl.Int32,
            "tcp_flags": pl.String,
            "tos": pl.Int16,
            "packets": pl.Int64,
            "bytes": pl.Int64,
            "flows": pl.Int32,
        },
        orient="row",
    )
    ts = {
        name: pl.col(name).str.to_datetime("%Y-%m-%dT%H:%M:%S%.3f", time_unit="ms")
        for name in ("first", "last")
    }
    return (
        frame.with_columns(ts_first=ts["first"], ts_raw_last=ts["last"])
        .with_columns(inverted=pl.col("ts_raw_last") < pl.col("ts_first"))
        .with_columns(
            ts_last=pl.when("inverted").then("ts_first").otherwise("ts_raw_last"),
        )
        .with_columns(
            duration=(pl.col("ts_last") - pl.col("ts_first")).dt.total_milliseconds() / 1000.0
        )
        .drop("first", "last", "ts_raw_last")
    )


def scale_tolerance(values: pl.Series, fmt: DumpFormat) -> pl.Series:
    """Half a unit of the last printed digit where nfdump prints `x.y M` (0 where exact)."""
    if fmt.plain or fmt.kind != "text":
        return pl.Series([0.0] * values.len())
    tol = pl.Series([0.0] * values.len())
    for threshold, _unit in reversed(_SCALE_UNITS):
        tol = (values >= threshold).cast(pl.Float64) * (threshold * 0.05) + (
            values < threshold
        ).cast(pl.Float64) * tol
    return tol


def shortened_matches(printed: str, full: str) -> bool:
    """nfdump condenses an IPv6 address longer than 16 characters to `first7..last7`.

    Documented rule for the comparison: the printed text must be exactly the full address, or
    contain `..` with the part before it a prefix and the part after it a suffix of the full
    address, the full address being longer than the printed one.
    """
    if printed == full:
        return True
    if ".." not in printed or ":" not in full:
        return False
    head, tail = printed.split("..", 1)
    return len(full) > len(printed) - 2 and full.startswith(head) and full.endswith(tail)


# --- comparing a parse with the oracle ---------------------------------------------------------

_MAX_REPORTED = 8


def compare_flows(got: pl.DataFrame, want: pl.DataFrame, fmt: DumpFormat) -> list[str]:
    """Every disagreement between our parse of one dump and the oracle, flow by flow, in order.

    Returns human-readable problems naming the flow (0-based index and dump line) and field.
    """
    if got.height != want.height:
        return [f"flow count: nfdump json says {want.height}, parser read {got.height}"]
    g = got.rename({c: f"got_{c}" for c in got.columns})
    both = pl.concat([want.with_row_index("flow"), g], how="horizontal")
    unit = fmt.ts_unit
    ptol = scale_tolerance(want["packets"], fmt)
    btol = scale_tolerance(want["bytes"], fmt)
    both = both.with_columns(ptol=ptol, btol=btol)
    checks: dict[str, pl.Expr] = {
        "ts_first": pl.col("got_ts_first") == pl.col("ts_first"),
        "ts_last": pl.col("got_ts_last") == pl.col("ts_last"),
        "duration": (pl.col("got_duration") - pl.col("duration")).abs() < 0.0005,
        "proto": pl.col("got_proto") == pl.col("proto"),
        "src_port": pl.col("got_src_port") == pl.col("src_port"),
        "dst_port": pl.col("got_dst_port") == pl.col("dst_port"),
        "packets": (pl.col("got_packets") - pl.col("packets")).abs() <= pl.col("ptol"),
        "bytes": (pl.col("got_bytes") - pl.col("bytes")).abs() <= pl.col("btol"),
        "approx": pl.col("got_approx") == ((pl.col("ptol") > 0) | (pl.col("btol") > 0)),
        "flows": pl.col("got_flows") == pl.col("flows"),
    }
    if fmt.has_flags:
        checks["tcp_flags"] = pl.col("got_tcp_flags") == pl.col("tcp_flags")
        checks["tos"] = pl.col("got_tos") == pl.col("tos")
    # what the format can print, so a failure message shows the value compared
    both = both.with_columns(
        pl.col("ts_first").dt.truncate(unit), pl.col("ts_last").dt.truncate(unit)
    )
    verdict = both.select(
        "flow", "got_line", **{name: expr.fill_null(False) for name, expr in checks.items()}
    )
    problems: list[str] = []
    for name in checks:
        bad = verdict.filter(~pl.col(name))["flow"]
        for i in bad.head(_MAX_REPORTED):
            row = both.row(i, named=True)
            problems.append(
                f"flow {i} (dump line {row['got_line']}), {name}: nfdump json says "
                f"{row[name] if name != 'approx' else bool(row['ptol'] or row['btol'])!r}, "
                f"parser read {row['got_' + name]!r}"
            )
        if bad.len() > _MAX_REPORTED:
            problems.append(f"... {name}: {bad.len() - _MAX_REPORTED} more flows")
    for side in ("src_addr", "dst_addr"):
        # the exact column names only: the oracle's addresses are full, the parse is as printed
        pairs = both.select("flow", "got_line", side, f"got_{side}").iter_rows()
        bad_rows = [
            (i, line, full, printed)
            for i, line, full, printed in pairs
            if printed is None
            or not (
                printed == full
                if fmt.full_v6 or ":" not in full
                else shortened_matches(printed, full)
            )
        ]
        for i, line, full, printed in bad_rows[:_MAX_REPORTED]:
            problems.append(
                f"flow {i} (dump line {line}), {side}: nfdump json says {full!r}, parser read {printed!r}"
            )
    return problems


def lines_name_their_flows(got: pl.DataFrame, text: bytes, fmt: DumpFormat) -> list[str]:
    """Provenance: each flow's `line` is the dump line that printed it (a json record's span)."""
    lines = text.decode().split("\n")
    problems = []
    if fmt.kind == "json":
        starts = [n for n, line in enumerate(lines, 1) if line.strip() == "{"]
        ends = [*starts[1:], len(lines) + 1]
        for i, (line, start, end) in enumerate(zip(got["line"], starts, ends, strict=False)):
            if not start <= line < end:
                problems.append(
                    f"flow {i}: line {line} is outside its json record ({start}-{end - 1})"
                )
        return problems[:_MAX_REPORTED]
    for i, (line, src, dst) in enumerate(got.select("line", "src_addr", "dst_addr").iter_rows()):
        printed = lines[line - 1] if 0 < line <= len(lines) else ""
        if src not in printed or dst not in printed:
            problems.append(f"flow {i}: line {line} does not print {src} -> {dst}: {printed!r}")
    return problems[:_MAX_REPORTED]


@dataclass(frozen=True)
class Summary:
    flows: int
    bytes: float
    packets: float
    bytes_tol: float
    packets_tol: float


def _scaled_number(text: str) -> tuple[float, float]:
    """'3.3 M' -> (3.3e6, 0.05e6); '6539' -> (6539, 0)."""
    m = re.fullmatch(r"([0-9.]+) ?([KMGT]?)", text.strip())
    if not m:
        raise ValueError(f"not an nfdump number: {text!r}")
    mult = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)]
    return float(m.group(1)) * mult, (0.05 * mult if m.group(2) else 0.0)


def summary_of(text: bytes) -> Summary | None:
    """The totals nfdump prints after the flows: the `Summary:` line, or csv's Summary block."""
    lines = text.decode().split("\n")
    for n, line in enumerate(lines):
        if line.startswith("Summary: "):
            fields = dict(part.split(": ", 1) for part in line[len("Summary: ") :].split(", "))
            b, btol = _scaled_number(fields["total bytes"])
            p, ptol = _scaled_number(fields["total packets"])
            return Summary(int(fields["total flows"]), b, p, btol, ptol)
        if line == "Summary" and n + 2 < len(lines):
            values = dict(zip(lines[n + 1].split(","), lines[n + 2].split(","), strict=True))
            return Summary(int(values["flows"]), int(values["bytes"]), int(values["packets"]), 0, 0)
    return None


# --- the nfcapd files the tests dump -------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# real nfcapd files (tests/fixtures/README.md): 1.6 LZO with sampling, tiny 2009 IPv4/IPv6 DNS,
# one minute of ISP export with end-before-start records, and the labelled lab captures
REAL_NFCAPD = (
    "nfcapd-small-lzo",
    "tmp_v4",
    "nfdump-tmp_v6.nfcapd",
    "tmp_bidir",
    "chrispassas-sample.nfcapd",
    "lab-dev-202611220835.nfcapd",
    "lab-mixed-dev-202611221003.nfcapd",
)
SOURCES = (
    "synthetic",
    "synthetic -R",
    "ipv4-mapped-ipv6",
    "netflow-v5",
    "netflow-v5-protocols",
    "netflow-v9",
    "iodine",
    *REAL_NFCAPD,
)


class NfcapdSources:
    """Lazily made nfcapd files per source name, shared by a whole test session."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._files: dict[str, list[Path]] = {}
        self._failed: dict[str, Exception] = {}
        self._oracle: dict[Path, pl.DataFrame] = {}
        self._dumps: dict[tuple[Path, str], bytes] = {}

    def files(self, source: str) -> list[Path]:
        if source in self._failed:
            raise self._failed[source]
        try:
            return self._make(source)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            self._failed[source] = exc  # made once: a broken source fails fast afterwards
            raise

    def _make(self, source: str) -> list[Path]:
        if source not in self._files:
            if source == "synthetic":
                pcap = build_capture().write(self.workdir / "synthetic.pcap")
                self._files[source] = run_nfpcapd(pcap, self.workdir / "synthetic")
            elif source == "ipv4-mapped-ipv6":
                pcap = build_mapped_capture().write(self.workdir / "mapped.pcap")
                self._files[source] = run_nfpcapd(pcap, self.workdir / source)
            elif source == "synthetic -R":
                self._files[source] = [self._make("synthetic")[0].parent]
            elif source == "netflow-v5":
                self._files[source] = run_nfcapd_v5(self.workdir / "netflow-v5")
            elif source == "netflow-v9":
                self._files[source] = run_nfcapd(self.workdir / source, [v9_datagram()], 4)
            elif source == "netflow-v5-protocols":
                self._files[source] = run_nfcapd_v5(self.workdir / source, V5_EVERY_PROTOCOL)
            elif source == "iodine":
                pcap = FIXTURES / "pcap" / "dns-tunnel-iodine.pcap"
                self._files[source] = run_nfpcapd(pcap, self.workdir / "iodine")
            else:
                # nfcapd/ is also read whole (-R) by the rules conformance test; nfcapd-extra/
                # holds the files only this harness dumps
                (path,) = [
                    d / source
                    for d in (FIXTURES / "nfcapd", FIXTURES / "nfcapd-extra")
                    if (d / source).exists()
                ]
                self._files[source] = [path]
        return self._files[source]

    def oracle(self, nfcapd_file: Path) -> pl.DataFrame:
        if nfcapd_file not in self._oracle:
            self._oracle[nfcapd_file] = oracle_flows(nfcapd_file)
        return self._oracle[nfcapd_file]

    def dump(self, nfcapd_file: Path, fmt: DumpFormat) -> Path:
        """The text dump of `nfcapd_file` in `fmt`, written where a collector's hook would."""
        out = self.workdir / "dumps" / f"{nfcapd_file.parent.name}-{nfcapd_file.name}.{fmt.id}.txt"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(run_nfdump(nfcapd_file, *fmt.args))
        return out
