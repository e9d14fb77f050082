"""nfdump's `-o json` (an array pretty-printed one key per line, 1.7.x) and `-o ndjson` (1.7.6+).

Both are read with whole-column regex extraction rather than a JSON parser so that one damaged
record costs one record, and so a flow's provenance is the line its object starts on.
"""

from __future__ import annotations

import polars as pl

from engine.core.schema import empty_flows
from engine.ingest import exprs

KEYS = (
    "first",
    "last",
    "in_packets",
    "in_bytes",
    "proto",
    "tcp_flags",
    "src_port",
    "dst_port",
    "icmp_type",
    "icmp_code",
    "src_tos",
    "src4_addr",
    "dst4_addr",
    "src6_addr",
    "dst6_addr",
    "aggr_flows",
)
ARRAY_START = r"^\s*\[\s*$"
_KV = r'^\s*"([A-Za-z0-9_]+)"\s*:\s*"?(.*?)"?\s*,?\s*$'


def _key_pattern(key: str) -> str:
    return rf'"{key}"\s*:\s*"?([^",}}]*)"?'


def _build(rec: pl.DataFrame, *, file: str) -> tuple[pl.DataFrame, pl.Series]:
    for key in KEYS:
        if key not in rec.columns:
            rec = rec.with_columns(pl.lit(None, dtype=pl.String).alias(key))

    def num(key: str, dtype=pl.Int64) -> pl.Expr:
        return pl.col(key).str.strip_chars().cast(dtype, strict=False)

    def ts(key: str) -> pl.Expr:
        return exprs.ts(pl.col(key).str.strip_chars().str.replace("T", " ", literal=True))

    proto = exprs.proto(pl.col("proto").str.strip_chars())
    folded = num("icmp_type", pl.Int32) * 256 + num("icmp_code", pl.Int32).fill_null(0)
    columns = {
        "ts_first": ts("first"),
        "ts_last": ts("last"),
        "duration": (ts("last") - ts("first")).dt.total_milliseconds().cast(pl.Float64) / 1000.0,
        "proto": proto,
        "src_addr": pl.coalesce(pl.col("src4_addr"), pl.col("src6_addr")).str.strip_chars(),
        "src_port": num("src_port", pl.Int32).fill_null(0),
        "dst_addr": pl.coalesce(pl.col("dst4_addr"), pl.col("dst6_addr")).str.strip_chars(),
        # json names ICMP type and code; fold them like nfdump's csv port
        "dst_port": pl.when(proto.is_in(exprs.ICMP_PROTOS) & folded.is_not_null())
        .then(folded)
        .otherwise(num("dst_port", pl.Int32))
        .fill_null(0),
        # json omits tcp_flags when none are set (ICMP): csv prints "........" then
        "tcp_flags": exprs.tcp_flags(pl.col("tcp_flags").str.strip_chars().fill_null("0")),
        "tos": num("src_tos", pl.Int16),
        "packets": num("in_packets"),
        "bytes": num("in_bytes"),
        "flows": num("aggr_flows", pl.Int32).fill_null(1),
        "line": pl.col("n"),
    }
    return exprs.build(rec, columns, file=file)


def parse_ndjson(lines: pl.DataFrame, *, file: str):
    rec = lines.select(
        "n", *[pl.col("text").str.extract(_key_pattern(k), 1).alias(k) for k in KEYS]
    )
    is_obj = lines["text"].str.contains(r"^\s*\{")
    flows, valid = _build(rec.filter(is_obj), file=file)
    rest = pl.concat([lines.filter(~is_obj), lines.filter(is_obj).filter(~valid)])
    return flows, rest


def parse_json(lines: pl.DataFrame, *, file: str, final: bool):
    """-> (flows, rows not part of a flow, number of trailing rows held back as incomplete)."""
    t = lines["text"].str.strip_chars()
    starts = t == "{"
    ends = t.is_in(["}", "},", "}]"])  # 1.7.1 closes the array on the last brace
    frame = lines.with_columns(
        obj=starts.cum_sum(),
        start=starts,
        end=ends,
        kv=lines["text"].str.extract_groups(_KV),
    ).unnest("kv")
    frame = frame.rename({"1": "key", "2": "value"})
    # Everything after the last closed object may still be being written.
    end_rows = ends.arg_true()
    last_end = int(end_rows[-1]) if end_rows.len() else -1
    held = 0
    if not final:
        tail = frame.slice(last_end + 1)
        tail_text = tail["text"].str.strip_chars()
        # a lone "]" (and blanks) after the last object is complete structure, not a cut-off
        if not bool(tail_text.is_in(["]", ""]).all()):
            held = tail.height
            frame = frame.slice(0, last_end + 1)
    objects = frame.group_by("obj", maintain_order=True).agg(
        n=pl.col("n").first(),
        complete=pl.col("start").first() & pl.col("end").any(),
    )
    complete_ids = objects.filter(pl.col("obj") > 0, pl.col("complete"))["obj"]
    if complete_ids.len() == 0:
        return empty_flows(), frame.select("n", "text"), held
    in_obj = frame["obj"].is_in(complete_ids.implode())
    body = frame.filter(in_obj)
    rec = body.filter(pl.col("key").is_in(list(KEYS))).pivot(
        on="key", index="obj", values="value", aggregate_function="first"
    )
    rec = (
        objects.filter(pl.col("obj").is_in(complete_ids.implode()))
        .select("obj", "n")
        .join(rec, on="obj", how="left")
    )
    flows, valid = _build(rec, file=file)
    bad_ids = rec.filter(~valid)["obj"]
    rest = frame.filter(~in_obj | pl.col("obj").is_in(bad_ids.implode())).select("n", "text")
    return flows, rest, held
