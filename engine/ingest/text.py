"""nfdump's fixed-column text formats: `-o line`, `-o long`, `-o extended` (1.6 and 1.7, -N)."""

from __future__ import annotations

import re

import polars as pl

from engine.ingest import exprs, fixedwidth

_NUM = r"[0-9]+(?:\.[0-9]+)?(?: ?[KMGT])?"
# One anchored pattern reads all three layouts: long adds flags+tos, extended adds pps/bps/bpp.
RECORD = (
    r"^(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?) +"
    r"(?P<dur>(?:-?[0-9]+d +)?-?[0-9]+:-?[0-9]+:-?[0-9]+(?:\.[0-9]+)?|-?[0-9]+(?:\.[0-9]+)?) +"
    r"(?P<proto>[^ ]+) +(?P<src>[^ ]+) +(?P<arrow>->) +(?P<dst>[^ ]+)"
    r"(?: +(?P<flags>[.A-Z]{6,8}|[0-9]+) +(?P<tos>[0-9]+))?"
    rf" +(?P<pkts>{_NUM}) +(?P<bytes>{_NUM})"
    rf"(?: +(?P<pps>{_NUM}) +(?P<bps>{_NUM}) +(?P<bpp>{_NUM}))?"
    r" +(?P<flows>[0-9]+) *$"
)
# `-o biline` (bidirectional flows): Out Pkt, In Pkt, Out Byte, In Byte, Flows. We keep the
# in-direction counts, as the other formats' packets/bytes columns are the in-direction ones.
BIRECORD = (
    RECORD.split(r" +(?P<arrow>->) +")[0]
    + r" +<-> +(?P<dst>[^ ]+)"
    + r"(?: +(?P<flags>[.A-Z]{6,8}|[0-9]+) +(?P<tos>[0-9]+))?"
    + rf" +(?P<opkts>{_NUM}) +(?P<pkts>{_NUM}) +(?P<obytes>{_NUM}) +(?P<bytes>{_NUM})"
    + r" +(?P<flows>[0-9]+) *$"
)
_RECORD_PY = re.compile(RECORD)
_BIRECORD_PY = re.compile(BIRECORD)
HEADER = r"^Date first seen +Duration"
FIELDS = ("ts", "dur", "proto", "src", "dst", "flags", "tos", "pkts", "bytes", "flows")


def format_of_header(header: str) -> str:
    if " pps " in header or " bps " in header:
        return "extended"
    if "In Pkt" in header or "Out Pkt" in header:
        return "bilong" if " Flags " in header else "biline"
    if " Flags " in header or " Tos " in header:
        return "long"
    return "line"


def sniff_record(line: str) -> str | None:
    m = _RECORD_PY.match(line)
    if not m:
        bi = _BIRECORD_PY.match(line)
        if not bi:
            return None
        return "bilong" if bi.group("flags") is not None else "biline"
    if m.group("pps") is not None:
        return "extended"
    return "long" if m.group("flags") is not None else "line"


def parse_text(lines: pl.DataFrame, *, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """lines (n, text) -> (flows, rows that are not flows)."""
    fast = None
    if lines.height >= fixedwidth._MIN_ROWS:
        layout = fixedwidth.learn(lines["text"], _RECORD_PY)
        if layout is not None:
            fast, handled = fixedwidth.parse_fixed(lines, layout, file=file)
            if bool(handled.all()):
                return fast, lines.clear()
            lines = lines.filter(~handled)
    flows, rest = _parse_regex(lines, file=file)
    if fast is None or fast.height == 0:
        return flows, rest
    if flows.height == 0:
        return fast, rest
    return pl.concat([fast, flows]).sort("line"), rest


def _parse_regex(lines: pl.DataFrame, *, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The exact path: one anchored regex per line (any layout, any column widths)."""
    groups = lines.select("n", g=pl.col("text").str.extract_groups(RECORD)).unnest("g")
    matched = groups["ts"].is_not_null()
    fields = groups.filter(matched).select("n", *FIELDS)
    unmatched = lines.filter(~matched)
    bidir = unmatched.filter(pl.col("text").str.contains(" <-> ", literal=True))
    if bidir.height:
        bi = bidir.select("n", g=pl.col("text").str.extract_groups(BIRECORD)).unnest("g")
        bi = bi.filter(pl.col("ts").is_not_null())
        fields = pl.concat(
            [fields, bi.select("n", *[c for c in FIELDS if c in bi.columns])], how="diagonal"
        ).sort("n")
    flows, valid = _build(fields, file=file)
    parsed = fields.filter(valid)["n"] if fields.height else fields["n"]
    return flows, lines.filter(~pl.col("n").is_in(parsed.implode()))


def _build(fields: pl.DataFrame, *, file: str):
    """String fields n, ts, dur, proto, src, dst, [flags, tos], pkts, bytes, flows -> flows."""
    proto = exprs.proto(pl.col("proto"))
    icmp_dst = proto.is_in(exprs.ICMP_PROTOS)
    src_addr, src_port = exprs.endpoint(pl.col("src"), type_code=False)
    dst_addr, dst_port = exprs.endpoint(pl.col("dst"), type_code=icmp_dst)
    packets, approx_p = exprs.scaled(pl.col("pkts"))
    nbytes, approx_b = exprs.scaled(pl.col("bytes"))
    columns = {
        "ts_first": exprs.ts(pl.col("ts")),
        "duration": exprs.duration(pl.col("dur")),
        "proto": proto,
        "src_addr": src_addr,
        "src_port": exprs.port(src_port, type_code=False),
        "dst_addr": dst_addr,
        # type.code only where nfdump prints it: the destination of ICMP flows
        "dst_port": pl.when(icmp_dst)
        .then(exprs.port(dst_port, type_code=True))
        .otherwise(exprs.port(dst_port, type_code=False)),
        "packets": packets,
        "bytes": nbytes,
        "flows": pl.col("flows").cast(pl.Int32, strict=False),
        "approx": approx_p | approx_b,
        "line": pl.col("n"),
    }
    if "flags" in fields.columns and fields["flags"].null_count() < fields.height:
        columns["tcp_flags"] = exprs.tcp_flags(pl.col("flags"))
        columns["tos"] = pl.col("tos").cast(pl.Int16, strict=False)
    return exprs.build(fields, columns, file=file)
