"""The contracts every part of the engine shares: canonical flow columns, scored columns, labels.

Every parser produces exactly FLOW_SCHEMA, in this order.
"""

from __future__ import annotations

import polars as pl

FLOW_SCHEMA: dict[str, pl.DataType] = {
    "ts_first": pl.Datetime("ms"),
    "ts_last": pl.Datetime("ms"),
    "duration": pl.Float64(),
    "proto": pl.String(),
    "src_addr": pl.String(),
    "src_port": pl.Int32(),
    "dst_addr": pl.String(),
    "dst_port": pl.Int32(),
    "tcp_flags": pl.String(),
    "tos": pl.Int16(),
    "packets": pl.Int64(),
    "bytes": pl.Int64(),
    "flows": pl.Int32(),
    "approx": pl.Boolean(),
    "file": pl.String(),
    "line": pl.Int64(),
}
FLOW_COLUMNS: tuple[str, ...] = tuple(FLOW_SCHEMA)

# What a scorer adds to the canonical columns.
SCORED_SCHEMA: dict[str, pl.DataType] = {
    **FLOW_SCHEMA,
    "score": pl.Float64(),  # 0..1, higher = more suspicious; never NaN or inf
    "verdict": pl.String(),  # a label from LABELS
    "reasons": pl.String(),  # short text: rule names, detector percentiles, neighbour labels
}

# The key that joins a labels file to flows when it has no file/line provenance.
FLOW_KEY: tuple[str, ...] = ("ts_first", "src_addr", "src_port", "dst_addr", "dst_port", "proto")
PROVENANCE_KEY: tuple[str, ...] = ("file", "line")

NORMAL = "normal"
ANOMALY = "anomaly"  # unsupervised-only verdict, never a training class
LABELS: tuple[str, ...] = (
    NORMAL,
    "dns_flood",
    "amplification",
    "tunnel",
    "scan",
    "zero_packet",
    "open_resolver",
    ANOMALY,
)

TCP_FLAG_LETTERS = "CEUAPRSF"

# The names nfdump (1.7.0-1.7.5) prints for IP protocol numbers: its protoList, as text and
# csv output show them; numbers missing here print as the number. Note 35 and 38 are both IDPR.
# tests/test_nfdump_oracle.py checks the table against the installed nfdump.
PROTO_NAMES: dict[int, str] = {
    n: name
    for n, name in enumerate(
        """ICMP IGMP GGP IPIP ST TCP CBT EGP IGP BBN NVPII PUP ARGUS ENCOM XNET CHAOS UDP MUX DCN
        HMP PRM XNS Trnk1 Trnk2 Leaf1 Leaf2 RDP IRTP ISO-4 NETBK MFESP MEINP DCCP 3PC IDPR XTP DDP
        IDPR TP++ IL IPv6 SDRP Rte6 Frag6 IDRP RSVP GRE MHRP BNA ESP AH INLSP SWIPE NARP MOBIL TLSP
        SKIP ICMP6 NOHE6 OPTS6 HOST CFTP NET SATNT KLAN RVD IPPC FS SATM VISA IPCV CPNX CPHB WSN PVP
        BSATM SUNND WBMON WBEXP ISOIP VMTP SVMTP VINES TTP NSIGP DGP TCF EIGRP OSPF S-RPC LARP MTP
        AX.25 OS MICP SCCSP ETHIP ENCAP - GMTP IFMP PNNI PIM ARIS SCPS QNX A/N IPcmp SNP CpqPP IPXIP
        VRRP PGM 0hop L2TP DDX IATP STP SRP UTI SMP SM PTP ISIS4 FIRE CRTP CRUDP - IPLT SPS PIPE SCTP
        FC - MHEAD UDP-L MPLS""".split(),
        start=1,
    )
    if name != "-"
}


def empty_flows() -> pl.DataFrame:
    return pl.DataFrame(schema=FLOW_SCHEMA)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType] = FLOW_SCHEMA) -> pl.DataFrame:
    """Select and cast to exactly `schema`, in order (a missing column is an error)."""
    return df.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
