"""Turn printed fields (String columns) into canonical, typed flows."""

from __future__ import annotations

import polars as pl

from engine.ingest.endpoints import split_endpoint
from engine.ingest.values import (
    ICMP_PROTOS,
    clamp_durations,
    duration_seconds,
    end_from_duration,
    proto_name,
    scaled,
    tcp_flags,
)
from engine.schema import FLOW_SCHEMA, conform, empty_flows

TS_FORMAT = "%Y-%m-%d %H:%M:%S%.f"
REQUIRED = (
    "ts_first",
    "duration",
    "proto",
    "src_addr",
    "src_port",
    "dst_addr",
    "dst_port",
    "packets",
    "bytes",
    "flows",
)


def parse_ts(series: pl.Series) -> pl.Series:
    return series.str.strip_chars().str.to_datetime(TS_FORMAT, time_unit="ms", strict=False)


def from_text_fields(
    fields: pl.DataFrame,
    *,
    file: str,
    proto_is_numeric_port: bool = False,
) -> tuple[pl.DataFrame, pl.Series]:
    """`fields` holds String columns n, ts, dur, proto, src, dst, [flags, tos], pkts, bytes, flows
    (src/dst as 'addr:port' tokens). Returns (flows, valid mask over the input rows)."""
    del proto_is_numeric_port
    height = fields.height
    if height == 0:
        return empty_flows(), pl.Series([], dtype=pl.Boolean)
    proto = proto_name(fields["proto"])
    icmp = proto.is_in(ICMP_PROTOS)
    src_addr, src_port = split_endpoint(fields["src"], None)
    dst_addr, dst_port = split_endpoint(fields["dst"], icmp)
    packets, approx_p = scaled(fields["pkts"])
    nbytes, approx_b = scaled(fields["bytes"])
    flags = (
        fields["flags"]
        if "flags" in fields.columns
        else pl.Series([None] * height, dtype=pl.String)
    )
    tos = fields["tos"] if "tos" in fields.columns else pl.Series([None] * height, dtype=pl.String)
    frame = pl.DataFrame(
        {
            "ts_first": parse_ts(fields["ts"]),
            "duration": duration_seconds(fields["dur"]),
            "proto": proto,
            "src_addr": src_addr,
            "src_port": src_port,
            "dst_addr": dst_addr,
            "dst_port": dst_port,
            "tcp_flags": tcp_flags(flags.fill_null("")).replace("", None)
            if flags.null_count() < height
            else flags,
            "tos": tos.str.strip_chars().cast(pl.Int16, strict=False),
            "packets": packets,
            "bytes": nbytes,
            "flows": fields["flows"].str.strip_chars().cast(pl.Int32, strict=False),
            "approx": approx_p | approx_b,
            "line": fields["n"],
        }
    )
    frame = end_from_duration(frame)
    return finish(frame, file)


def finish(frame: pl.DataFrame, file: str) -> tuple[pl.DataFrame, pl.Series]:
    """Keep rows with every required field, clamp absurd durations, conform to FLOW_SCHEMA."""
    valid = pl.all_horizontal([pl.col(c).is_not_null() for c in REQUIRED])
    mask = frame.select(valid).to_series()
    flows = frame.filter(mask)
    for name in FLOW_SCHEMA:
        if name not in flows.columns:
            flows = flows.with_columns(pl.lit(None, dtype=FLOW_SCHEMA[name]).alias(name))
    flows = clamp_durations(flows).with_columns(file=pl.lit(file, dtype=pl.String))
    return conform(flows), mask
