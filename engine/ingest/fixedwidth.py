"""Fast path for nfdump's text layouts: slice fixed columns instead of matching a regex.

nfdump pads every field to a fixed width, so nearly all records of one layout have the same
length and their fields sit at the same columns. We learn those columns from a sample of
records (matched with the exact regex in Python), slice every line of that length at once,
and validate each row; rows that do not fit (absurd durations, overlong values, other
layouts) are left to the exact regex path.
"""

from __future__ import annotations

import re
from collections import Counter

import polars as pl

from engine.ingest import exprs

_SAMPLE = 400
_MIN_ROWS = 64  # below this the regex path is cheaper than learning a layout
# fields in print order; "arrow" is only a boundary
_ORDER = (
    "ts",
    "dur",
    "proto",
    "src",
    "arrow",
    "dst",
    "flags",
    "tos",
    "pkts",
    "bytes",
    "pps",
    "bps",
    "bpp",
    "flows",
)


def _separator(token: str, type_code: bool) -> int | None:
    """Index of the ':' (IPv4) or '.' (IPv6) before the port in an endpoint token."""
    head, colon, rest = token.partition(":")
    if colon and "." in head and ":" not in rest:
        return len(head)
    last = token.rfind(".")
    if last < 0:
        return None
    return token.rfind(".", 0, last) if type_code else last


def learn(texts: pl.Series, record: re.Pattern) -> dict | None:
    """Column layout of the most common (length, field set) among sampled records."""
    head = texts.head(_SAMPLE * 10)
    sample = head.filter(head.str.contains(r"^[0-9]{4}-")).head(_SAMPLE).to_list()
    found: list[tuple[tuple, int, re.Match]] = []
    for line in sample:
        m = record.match(line)
        if m:
            sig = tuple(g for g in _ORDER if g == "arrow" or m.group(g) is not None)
            found.append((sig, len(line), m))
    if not found:
        return None
    (sig, length), _ = Counter((s, n) for s, n, _ in found).most_common(1)[0]
    matches = [m for s, n, m in found if s == sig and n == length]
    spans: dict[str, tuple[int, int]] = {}
    for g in sig:
        if g == "arrow":
            starts = [m.string.index("->", m.end("src")) for m in matches]
            spans[g] = (min(starts), max(starts) + 2)
        else:
            spans[g] = (min(m.start(g) for m in matches), max(m.end(g) for m in matches))
    seps = {}
    for g in ("src", "dst"):
        cols: Counter[int] = Counter()
        for m in matches:
            icmp = g == "dst" and m.group("proto") in ("ICMP", "ICMP6", "1", "58")
            sep = _separator(m.group(g), icmp)
            if sep is not None:
                cols[m.start(g) + sep] += 1
        if not cols:
            return None
        seps[g] = cols.most_common(1)[0][0]
    # Each gap between observed values is split in the middle: a value wider than any in
    # the sample then leaves a space inside some slice, which the row checks refuse.
    cuts = [0]
    for left, right in zip(sig, sig[1:], strict=False):
        cuts.append((spans[left][1] + spans[right][0] + 1) // 2)
    cuts.append(length)
    bounds = {g: (cuts[i], cuts[i + 1]) for i, g in enumerate(sig)}
    return {
        "length": length,
        "sig": sig,
        "bounds": bounds,
        "arrow": spans["arrow"][0],
        "seps": seps,
    }


def parse_fixed(lines: pl.DataFrame, layout: dict, *, file: str):
    """-> (flows, mask over `lines` of the rows parsed here). Other rows: regex path."""
    b, seps = layout["bounds"], layout["seps"]
    text = pl.col("text")

    def field(g: str) -> pl.Expr:
        lo, hi = b[g]
        return text.str.slice(lo, hi - lo).str.strip_chars()

    fits = lines.select(
        (text.str.len_bytes() == layout["length"]) & (text.str.slice(layout["arrow"], 2) == "->")
    ).to_series()
    cand = lines if bool(fits.all()) else lines.filter(fits)
    if cand.height == 0:
        return pl.DataFrame(schema=exprs.FLOW_SCHEMA), pl.Series([False] * lines.height)
    lo, hi = b["ts"]
    cols = {
        "n": pl.col("n"),
        "ts": text.str.slice(lo, hi - lo).str.strip_chars_end(),
        "dur": field("dur"),
        "proto": field("proto"),
        "pkts": field("pkts"),
        "bytes": field("bytes"),
        "flows": field("flows"),
    }
    for g in ("src", "dst"):
        lo, hi = b[g]
        sep = seps[g]
        cols[f"{g}_addr"] = text.str.slice(lo, sep - lo).str.strip_chars()
        cols[f"{g}_port"] = text.str.slice(sep + 1, hi - sep - 1).str.strip_chars()
    if "flags" in layout["sig"]:
        cols["flags"] = field("flags")
        cols["tos"] = field("tos")
    raw = cand.lazy().select(**cols).collect()
    packets, approx_p = exprs.scaled_series(raw["pkts"])
    nbytes, approx_b = exprs.scaled_series(raw["bytes"])
    raw = raw.with_columns(
        proto=exprs.small_domain(raw["proto"], exprs.proto),
        ts_v=exprs.ts_series(raw["ts"]),
        dur_v=exprs.by_unique(raw["dur"], exprs.duration),
        pkts_v=packets,
        bytes_v=nbytes,
        approx_v=approx_p | approx_b,
    )
    icmp = bool(raw["dst_port"].str.contains(".", literal=True).any())
    spaced = ["proto", "src_addr", "dst_addr"] + (["flags"] if "flags" in raw.columns else [])
    # Rows of the learned length with the arrow in place are aligned (nfdump pads, never
    # shrinks, a field); a value wider than the sample's leaves a space inside a slice.
    ok = ~pl.any_horizontal([pl.col(c).str.contains(" ", literal=True) for c in spaced])
    columns = {
        "ts_first": pl.col("ts_v"),
        "duration": pl.col("dur_v"),
        "proto": pl.when(ok & (pl.col("proto") != "")).then(pl.col("proto")),
        "src_addr": pl.col("src_addr").replace("", None),
        "src_port": exprs.port(pl.col("src_port"), type_code=False),
        "dst_addr": pl.col("dst_addr").replace("", None),
        # type.code only where nfdump prints it: the destination of ICMP flows
        "dst_port": pl.when(pl.col("proto").is_in(exprs.ICMP_PROTOS))
        .then(exprs.port(pl.col("dst_port"), type_code=True))
        .otherwise(exprs.port(pl.col("dst_port"), type_code=False))
        if icmp
        else exprs.port(pl.col("dst_port"), type_code=False),
        "packets": pl.col("pkts_v"),
        "bytes": pl.col("bytes_v"),
        "flows": pl.col("flows").cast(pl.Int32, strict=False),
        "approx": pl.col("approx_v"),
        "line": pl.col("n"),
    }
    if "flags" in layout["sig"]:
        raw = raw.with_columns(flags=exprs.small_domain(raw["flags"], exprs.tcp_flags))
        columns["tcp_flags"] = pl.col("flags")
        columns["tos"] = pl.col("tos").cast(pl.Int16, strict=False)
    flows, valid = exprs.build(raw, columns, file=file)
    if cand is lines:
        return flows, valid
    mask = pl.Series([False] * lines.height).scatter(fits.arg_true(), valid)
    return flows, mask
