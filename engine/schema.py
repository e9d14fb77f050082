"""The contracts every part of the engine shares: canonical flow columns, scored columns, labels.

See DESIGN.md "Contracts". Every parser produces exactly FLOW_SCHEMA, in this order.
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

# IANA protocol numbers that nfdump prints by name; others print as their number.
PROTO_NAMES: dict[int, str] = {
    1: "ICMP",
    2: "IGMP",
    4: "IPIP",
    6: "TCP",
    17: "UDP",
    41: "IPv6",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "ICMP6",
    89: "OSPF",
    103: "PIM",
    132: "SCTP",
}


def empty_flows() -> pl.DataFrame:
    return pl.DataFrame(schema=FLOW_SCHEMA)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType] = FLOW_SCHEMA) -> pl.DataFrame:
    """Select and cast to exactly `schema`, in order (a missing column is an error)."""
    return df.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
