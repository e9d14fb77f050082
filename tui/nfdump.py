"""nfdump filter and command text built from a flow row.

Addresses come from a dump, so they are checked before they go into a filter or a shell
command: an "address" like `1.2.3.4 or any` or `x'; rm -rf ~` is refused, not quoted.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from datetime import datetime, timedelta
from pathlib import Path

from engine.filters.language import PROTO_NUMBERS, Proto, format_filter

# nfdump prints shortened IPv6 with `..` (2001:db8..2); those are kept as printed.
_ADDRESS = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")


def is_address(text: object) -> bool:
    if not isinstance(text, str) or not _ADDRESS.match(text):
        return False
    if ".." in text:
        return True  # nfdump's shortened IPv6; not parseable, still only hex digits and dots
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_filter(address: str, *, direction: str = "") -> str:
    """`host ADDR` / `src host ADDR` for a checked address (ValueError otherwise)."""
    if not is_address(address):
        raise ValueError("not an IP address")
    prefix = f"{direction} " if direction else ""
    return f"{prefix}host {address}"


def flow_filter(row: dict) -> str:
    """The nfdump filter selecting this flow's conversation: both hosts, both ports, the protocol."""
    src, dst = row.get("src_addr"), row.get("dst_addr")
    if not (is_address(src) and is_address(dst)):
        raise ValueError("the flow's addresses are not IP addresses")
    parts = [f"host {src}", f"host {dst}"]
    proto = str(row.get("proto") or "").lower()
    if proto in ("tcp", "udp", "sctp"):
        for port in (row.get("src_port"), row.get("dst_port")):
            if isinstance(port, int):
                parts.append(f"port {port}")
    # by the name or number nfdump's filter reads back ('proto host' is a syntax error there)
    number = int(proto) if re.fullmatch(r"[0-9]{1,3}", proto) else PROTO_NUMBERS.get(proto)
    if number is not None and number <= 255:
        parts.append(format_filter(Proto(number)))
    return " and ".join(parts)


def time_window(first: datetime | None, last: datetime | None) -> str:
    """nfdump's -t window (yyyy/MM/dd.hh:mm:ss-yyyy/MM/dd.hh:mm:ss) around the flow, whole seconds."""
    if first is None:
        return ""
    last = last if last is not None and last >= first else first
    start = first.replace(microsecond=0)
    end = last.replace(microsecond=0) + timedelta(seconds=1)
    style = "%Y/%m/%d.%H:%M:%S"
    return f"{start.strftime(style)}-{end.strftime(style)}"


def nfdump_command(row: dict, directory: str | Path) -> str:
    """`nfdump -R DIR -t WINDOW 'FILTER'`: the same flows from the binary nfcapd files."""
    window = time_window(row.get("ts_first"), row.get("ts_last"))
    parts = ["nfdump", "-R", shlex.quote(str(directory))]
    if window:
        parts += ["-t", window]
    parts.append(shlex.quote(flow_filter(row)))
    return " ".join(parts)
