"""Per-flow features with conversation, client, server and pair context over tumbling windows.

Every DNS exchange has a client (the end that is not port 53) and a server. Context is keyed on
the client because a shared resolver serves normal and abusive clients alike; per-conversation
context (client address and port with its server) keeps one host's attack from painting its
normal lookups. Features are scale-free where the data allows (log counts, shares, ratios such
as answer bytes per query byte) so that they mean the same on another network.

Windows are tumbling, aligned on `ts_first` with `dt.truncate` + `group_by` and joined back
(`group_by_dynamic` is about ten times slower). `history` (flows of earlier files, not scored)
joins the window computation so that a window spanning a rotation boundary sees both files.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.roles import (
    ROLE_ANSWER,
    ROLE_OTHER,
    ROLE_QUERY,
    client_addr,
    role,
    server_addr,
)

WINDOWS: tuple[str, ...] = ("10s", "60s")
# Conversation context uses the longest window: a conversation (one socket) lives for a while.
CONVERSATION_WINDOW = "60s"
# How far back a live scorer must keep earlier flows so every tumbling window it scores into
# is complete: the longest window (windows are aligned with dt.truncate, so 60 s suffices).
HISTORY_SECONDS = 60.0
# A packet of at most this many bytes carries no DNS message: 28-byte empty UDP, 40-44-byte
# bare TCP segments (SYN, RST) and ICMP errors quoting a header.
TINY_BPP = 44.0
# ICMP port unreachable as nfdump's port column encodes it (type * 256 + code): 3.3 for
# ICMP, 1.4 for ICMPv6. A host that gets answers it never asked for replies with these.
ICMP_UNREACH = {"ICMP": 3 * 256 + 3, "ICMP6": 1 * 256 + 4}


SEED_FEATURES: tuple[str, ...] = ("duration", "packets", "bytes", "pps", "bps", "Bpp", "flows")

_FLOW_FEATURES = [
    "log_duration",
    "log_packets",
    "log_bytes",
    "log_pps",
    "log_bps",
    "log_bpp",
    "log_flows",
    "role_query",
    "role_answer",
    "proto_tcp",
    "proto_udp",
    "proto_icmp",
    "flag_syn",
    "flag_ack",
    "flag_rst",
    "flag_fin",
    "tiny",
    "icmp_unreach",
]
# Aggregates computed per client and per server address, and per client-server pair.
_HOST_AGGS = [
    "flows",
    "packets",
    "bytes",
    "peers",
    "ports",
    "port_reuse",
    "ans_q",
    "ans_share",
    "tiny_share",
    "tcp_share",
    "other_share",
    "q_bpp",
    "a_bpp",
]
# `unreach` is the victim's side of reflection, toward each reflector (see build_feature_groups).
_PAIR_AGGS = ["flows", "ports", "ans_q", "ans_share", "tiny_share", "q_bpp", "a_bpp", "unreach",
              "a_cv"]
_CONV_AGGS = ["flows", "packets", "ans_q", "ans_share", "q_bpp", "a_bpp", "span", "gap", "servers",
              "a_cv"]
# The conversation against its pair (client-server, same window): a host's attack paints the
# pair's context, and these say whether this conversation is the attack or an ordinary lookup
# beside it (share of the pair's flows; answer and query sizes relative to the pair's).
_CONV_VS_PAIR = ["v_share_of_pair", "v_a_vs_pair", "v_q_vs_pair"]
# The client context of this flow's server end (e.g. the scanner receiving ICMP errors).
_PEER_AGGS = ["flows", "peers", "ans_share", "tiny_share", "other_share"]


def _window_names() -> list[str]:
    names: list[str] = []
    for w in WINDOWS:
        names += [f"c{w}_{a}" for a in _HOST_AGGS]
        names += [f"s{w}_{a}" for a in _HOST_AGGS]
        names += [f"p{w}_{a}" for a in _PAIR_AGGS]
        names += [f"c{w}_share_of_server", f"p{w}_share_of_client"]
    names += [f"v_{a}" for a in _CONV_AGGS]
    names += [f"peer{WINDOWS[0]}_{a}" for a in _PEER_AGGS]
    names += ["burst_client", "burst_pair", *_CONV_VS_PAIR]
    return names


FEATURE_COLUMNS: tuple[str, ...] = tuple(_FLOW_FEATURES + _window_names())

_NEEDED = ("ts_first", "ts_last", "duration", "proto", "src_addr", "src_port", "dst_addr",
           "dst_port", "tcp_flags", "packets", "bytes", "flows")


def seed_features_exprs() -> dict[str, pl.Expr]:
    """The seed work's seven per-flow features, as nfdump computes them (rates 0 when duration 0)."""
    d = pl.col("duration").cast(pl.Float64)
    return {
        "duration": d,
        "packets": pl.col("packets").cast(pl.Float64),
        "bytes": pl.col("bytes").cast(pl.Float64),
        "pps": pl.when(d > 0).then(pl.col("packets") / d).otherwise(0.0),
        "bps": pl.when(d > 0).then(8.0 * pl.col("bytes") / d).otherwise(0.0),
        "Bpp": pl.col("bytes") / pl.max_horizontal(pl.col("packets"), pl.lit(1)),
        "flows": pl.col("flows").cast(pl.Float64),
    }


def seed_features(flows: pl.DataFrame) -> pl.DataFrame:
    """The seven seed features, raw (the seed kNN's input)."""
    return flows.select(**seed_features_exprs())


def _log1p(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Float64).clip(lower_bound=0.0).log1p()


def _base(flows: pl.DataFrame) -> pl.LazyFrame:
    """Role, client/server ends and per-flow quantities every aggregate needs."""
    is_ans = pl.col("role") == ROLE_ANSWER
    is_q = pl.col("role") == ROLE_QUERY
    bpp = pl.col("bytes") / pl.max_horizontal(pl.col("packets"), pl.lit(1))
    return (
        flows.lazy()
        .select(*_NEEDED, "_own")
        .with_columns(role=role())
        .with_columns(
            client=client_addr(),
            server=server_addr(),
            # a missing port must not void the conversation keys (null poisons the mixing)
            cport=pl.when(is_ans).then(pl.col("dst_port")).otherwise(pl.col("src_port")).fill_null(0),
            q_bytes=pl.when(is_q).then(pl.col("bytes")).otherwise(0),
            q_pkts=pl.when(is_q).then(pl.col("packets")).otherwise(0),
            a_bytes=pl.when(is_ans).then(pl.col("bytes")).otherwise(0),
            a_pkts=pl.when(is_ans).then(pl.col("packets")).otherwise(0),
            is_ans=is_ans.cast(pl.Float64),
            is_unreach=pl.any_horizontal(
                [(pl.col("proto") == p) & (pl.col("dst_port") == t) for p, t in ICMP_UNREACH.items()]
            ).fill_null(False).cast(pl.Float64),
            is_other=(pl.col("role") == ROLE_OTHER).cast(pl.Float64),
            is_tcp=(pl.col("proto") == "TCP").cast(pl.Float64),
            tiny=(pl.col("bytes") <= TINY_BPP * pl.max_horizontal(pl.col("packets"), pl.lit(1)))
            .cast(pl.Float64),
            # first and second moments of answer size, summed per group for _cv_aggs
            a_s=pl.when(is_ans).then(bpp).otherwise(0.0),
            a_s2=pl.when(is_ans).then(bpp**2).otherwise(0.0),
            **{f"w{w}": pl.col("ts_first").dt.truncate(w) for w in WINDOWS},
        )
    )


def _flow_features() -> list[pl.Expr]:
    seed = seed_features_exprs()
    return [
        *[_log1p(seed[name]).alias(f"log_{name.lower()}") for name in SEED_FEATURES],
        (pl.col("role") == ROLE_QUERY).cast(pl.Float64).alias("role_query"),
        (pl.col("role") == ROLE_ANSWER).cast(pl.Float64).alias("role_answer"),
        pl.col("is_tcp").alias("proto_tcp"),
        (pl.col("proto") == "UDP").cast(pl.Float64).alias("proto_udp"),
        pl.col("proto").is_in(["ICMP", "ICMP6"]).cast(pl.Float64).alias("proto_icmp"),
        (pl.col("tcp_flags").str.slice(6, 1) == "S").cast(pl.Float64).alias("flag_syn"),
        (pl.col("tcp_flags").str.slice(3, 1) == "A").cast(pl.Float64).alias("flag_ack"),
        (pl.col("tcp_flags").str.slice(5, 1) == "R").cast(pl.Float64).alias("flag_rst"),
        (pl.col("tcp_flags").str.slice(7, 1) == "F").cast(pl.Float64).alias("flag_fin"),
        pl.col("is_unreach").alias("icmp_unreach"),
    ]


_MIX = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: the usual multiplicative hash constant


def _key(*cols: str | pl.Expr) -> pl.Expr:
    """A 64-bit key for a combination of columns: xor-multiply mixing of their values.

    Several times cheaper than hashing a struct. Each step is a bijection of the running key
    (u64 multiplication by an odd constant wraps), and address columns enter as string
    hashes, so two groups share a key only by a 2^-64 coincidence. Grouping uses all 64 bits.
    """
    acc = pl.lit(0x2545F4914F6CDD1D, dtype=pl.UInt64)
    for c in cols:
        e = pl.col(c) if isinstance(c, str) else c
        # wrap: a negative value (an epoch before 1970) mixes in as its two's complement
        acc = (acc ^ e.cast(pl.UInt64, wrap_numerical=True)) * pl.lit(_MIX, dtype=pl.UInt64)
    return acc


_N = pl.col("n").sum()  # flows in a group of conversations


def _ratio_aggs(prefix: str) -> list[pl.Expr]:
    """Answer/query asymmetry and message sizes: scale-free, meaningful on any network."""
    return [
        ((pl.col("a_bytes").sum() + 1.0) / (pl.col("q_bytes").sum() + 1.0)).log().alias(f"{prefix}ans_q"),
        (pl.col("n_ans").sum() / _N).alias(f"{prefix}ans_share"),
        _log1p(pl.col("q_bytes").sum() / pl.max_horizontal(pl.col("q_pkts").sum(), pl.lit(1))).alias(
            f"{prefix}q_bpp"
        ),
        _log1p(pl.col("a_bytes").sum() / pl.max_horizontal(pl.col("a_pkts").sum(), pl.lit(1))).alias(
            f"{prefix}a_bpp"
        ),
    ]


def _cv_aggs(prefix: str) -> list[pl.Expr]:
    """Spread of answer sizes (coefficient of variation, from summed moments): a tunnel's
    answers carry data and vary; a flood's repeat one reply. Query sizes are left out: their
    spread follows the mix of names a network asks for (a model trained where normal clients
    ask few names flagged 8% of normal flows on a network where they ask many)."""
    m = pl.max_horizontal(pl.col("n_ans").sum(), pl.lit(1.0))
    mean = pl.col("a_s").sum() / m
    var = (pl.col("a_s2").sum() / m - mean**2).clip(lower_bound=0.0)
    return [(var.sqrt() / pl.max_horizontal(mean, pl.lit(1.0))).alias(f"{prefix}a_cv")]


def _host_aggs(peer: str, prefix: str) -> list[pl.Expr]:
    """Context of one address (as client or as server) in a window, from its conversations."""
    return [
        _N.alias(f"{prefix}n"),
        _log1p(_N).alias(f"{prefix}flows"),
        _log1p(pl.col("packets").sum()).alias(f"{prefix}packets"),
        _log1p(pl.col("bytes").sum()).alias(f"{prefix}bytes"),
        _log1p(pl.col(peer).n_unique()).alias(f"{prefix}peers"),
        _log1p(pl.col("cport").n_unique()).alias(f"{prefix}ports"),
        (pl.col("cport").n_unique() / _N).alias(f"{prefix}port_reuse"),
        (pl.col("n_tiny").sum() / _N).alias(f"{prefix}tiny_share"),
        (pl.col("n_tcp").sum() / _N).alias(f"{prefix}tcp_share"),
        (pl.col("n_other").sum() / _N).alias(f"{prefix}other_share"),
        *_ratio_aggs(prefix),
    ]


def build_features(flows: pl.DataFrame, history: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row of FEATURE_COLUMNS (Float32, finite) per flow of `flows`, in the same order."""
    distinct, inverse = build_feature_groups(flows, history)
    return distinct[inverse]


def build_feature_groups(
    flows: pl.DataFrame, history: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, np.ndarray]:
    """Distinct feature rows and, per flow of `flows`, the index of its row.

    Flows with the same per-flow values in the same groups (client, server, pair, conversation
    windows) have identical features; floods and tunnels repeat them thousands of times. Working
    on the distinct rows avoids materialising ~100 columns per flow and gives the models their
    deduplicated input for free. (Rows from different groups may still be equal: callers that
    need exact deduplication dedup the distinct rows again, which is cheap.)
"""
    if history is not None and history.height:
        lo = flows["ts_first"].min()
        if lo is not None:
            start = pl.lit(lo).dt.truncate(WINDOWS[-1])
            history = history.filter(pl.col("ts_first") >= start)
        parts = [history.select(_NEEDED).with_columns(_own=pl.lit(False)),
                 flows.select(_NEEDED).with_columns(_own=pl.lit(True))]
        combined = pl.concat(parts, how="vertical_relaxed")
    else:
        combined = flows.select(_NEEDED).with_columns(_own=pl.lit(True))
    w0, w1 = WINDOWS[0], WINDOWS[-1]
    wv = f"w{CONVERSATION_WINDOW}"
    base = (
        _base(combined)
        .with_columns(
            _ch=pl.col("client").hash(seed=1),
            _sh=pl.col("server").hash(seed=1),
            _ph=pl.col("proto").hash(seed=2),
            **{f"w{w}": pl.col(f"w{w}").dt.epoch("ms") for w in WINDOWS},
        )
        .with_columns(
            # the finest group: one conversation (client socket, server, proto) in the shortest
            # window; every coarser group is a union of these (windows nest)
            _k1=_key(f"w{w0}", "_ch", "cport", "_sh", "_ph"),
            # every input of the per-flow features, so equal _kf means equal per-flow features
            _kf=_key(*[pl.col(c).hash(seed=3) for c in
                       ("proto", "tcp_flags", "duration", "packets", "bytes", "flows", "role",
                        "is_unreach")]),
        )
        .collect()
    )
    # Each grouping gets one u64 key (a hash of its columns): grouping and joining on one
    # integer is several times faster than on a timestamp plus address strings.
    keys = {
        **{f"kc{w}": _key(f"w{w}", "_ch") for w in WINDOWS},
        **{f"ks{w}": _key(f"w{w}", "_sh") for w in WINDOWS},
        **{f"kp{w}": _key(f"w{w}", "_ch", "_sh") for w in WINDOWS},
        "kpeer": _key(f"w{w0}", "_sh"),
        "kv": _key(wv, "_ch", "cport", "_sh", "_ph"),
        "ksock": _key(wv, "_ch", "cport"),
    }
    # Sum flows into conversations first: every aggregate below is a sum, a distinct count
    # or a min/max, so it comes out the same from conversations as from flows, on far fewer
    # rows (a query and its answer, a flood's packets from one socket, are one row).
    conversations = (
        base.lazy()
        .group_by("_k1")
        .agg(
            *[pl.col(c).first() for c in (*[f"w{w}" for w in WINDOWS], "_ch", "_sh", "cport", "_ph")],
            pl.len().alias("n"),
            *[pl.col(c).sum() for c in ("packets", "bytes", "q_bytes", "q_pkts", "a_bytes", "a_pkts")],
            pl.col("is_ans").sum().alias("n_ans"),
            *[pl.col(c).sum() for c in ("a_s", "a_s2")],
            (pl.col("is_unreach") * pl.col("packets")).sum().alias("unreach_pkts"),
            pl.col("is_other").sum().alias("n_other"),
            pl.col("is_tcp").sum().alias("n_tcp"),
            pl.col("tiny").sum().alias("n_tiny"),
            pl.col("ts_first").min().alias("tf_min"),
            pl.col("ts_first").max().alias("tf_max"),
            pl.col("ts_last").max().alias("tl_max"),
        )
        .with_columns(**keys)
        .collect()
    )
    lf = conversations.lazy()
    tables: list[tuple[str, pl.LazyFrame]] = []
    for w in WINDOWS:
        client = lf.group_by(f"kc{w}").agg(_host_aggs("_sh", f"c{w}_")).cache()
        tables.append((f"kc{w}", client))
        tables.append((f"ks{w}", lf.group_by(f"ks{w}").agg(_host_aggs("_ch", f"s{w}_"))))
        tables.append((f"kp{w}", lf.group_by(f"kp{w}").agg(
            _N.alias(f"p{w}_n"),
            _log1p(_N).alias(f"p{w}_flows"),
            _log1p(pl.col("cport").n_unique()).alias(f"p{w}_ports"),
            (pl.col("n_tiny").sum() / _N).alias(f"p{w}_tiny_share"),
            *_ratio_aggs(f"p{w}_"),
            # A spoofed victim's kernel answers each unasked-for answer with an ICMP port
            # unreachable, so about half of what it exchanges with the reflector is errors.
            # Per pair, not per host: a host's own normal lookups must not inherit it. Counted
            # in packets: a router folds a minute of errors into one flow.
            (pl.col("unreach_pkts").sum()
             / (pl.col("unreach_pkts").sum() + pl.col("a_pkts").sum()))
            .alias(f"p{w}_unreach"),
            *_cv_aggs(f"p{w}_"),
        )))
        if w == w0:
            # the client context of this flow's server end (same key shape as kc{w0})
            tables.append(("kpeer", client.select(
                pl.col(f"kc{w}").alias("kpeer"),
                *[pl.col(f"c{w}_{a}").alias(f"peer{w}_{a}") for a in _PEER_AGGS],
            )))
    tables.append(("kv", lf.group_by("kv").agg(
        _N.alias("v_n"),
        _log1p(_N).alias("v_flows"),
        _log1p(pl.col("packets").sum()).alias("v_packets"),
        *_ratio_aggs("v_"),
        *_cv_aggs("v_"),
        _log1p((pl.col("tl_max").max() - pl.col("tf_min").min()).dt.total_milliseconds() / 1000.0)
        .alias("v_span"),
        _log1p(
            (pl.col("tf_max").max() - pl.col("tf_min").min()).dt.total_milliseconds()
            / 1000.0 / pl.max_horizontal(_N - 1, pl.lit(1))
        ).alias("v_gap"),
    )))
    # How many servers the same client socket talks to (a scanner's fixed source port).
    tables.append(("ksock", lf.group_by("ksock").agg(
        _log1p(pl.col("_sh").n_unique()).alias("v_servers")
    )))
    own = base.select(
        "_k1", "_kf", "_own", "role", "is_tcp", "proto", "tcp_flags", "duration", "packets",
        "bytes", "flows", "tiny", "is_unreach",
    )
    if not own["_own"].all():
        own = own.filter(pl.col("_own"))
    # a flow's groups all follow from its conversation, so (per-flow values, conversation)
    # decides its whole feature row
    own = own.with_columns(_kx=_key("_kf", "_k1"))
    ids = own.select("_kx").with_row_index("_i")
    first = ids.group_by("_kx").agg(pl.col("_i").first()).with_row_index("_g")
    inverse = (
        ids.join(first.select("_kx", "_g"), on="_kx", how="left", maintain_order="left")["_g"]
        .to_numpy()
    )
    distinct = own[first["_i"]].join(
        conversations.select("_k1", *keys), on="_k1", how="left", maintain_order="left"
    )
    # Narrow joins (one key column each) on the distinct rows only, stacked side by side.
    joined = pl.collect_all([
        distinct.lazy().select(k).join(t, on=k, how="left", maintain_order="left").drop(k)
        for k, t in tables
    ])
    out = pl.concat([distinct.lazy().with_columns(_flow_features()).collect(), *joined],
                    how="horizontal").lazy()
    out = out.with_columns(
        *[(pl.col(f"c{w}_n") / pl.col(f"s{w}_n")).alias(f"c{w}_share_of_server") for w in WINDOWS],
        *[(pl.col(f"p{w}_n") / pl.col(f"c{w}_n")).alias(f"p{w}_share_of_client") for w in WINDOWS],
        # Share of the long window's flows that fall in this short window: bursts show up as
        # a high share whatever the absolute rate.
        (pl.col(f"c{w0}_n") / pl.col(f"c{w1}_n")).alias("burst_client"),
        (pl.col(f"p{w0}_n") / pl.col(f"p{w1}_n")).alias("burst_pair"),
        (pl.col("v_n") / pl.col(f"p{CONVERSATION_WINDOW}_n")).alias("v_share_of_pair"),
        (pl.col("v_a_bpp") - pl.col(f"p{CONVERSATION_WINDOW}_a_bpp")).alias("v_a_vs_pair"),
        (pl.col("v_q_bpp") - pl.col(f"p{CONVERSATION_WINDOW}_q_bpp")).alias("v_q_vs_pair"),
    )
    distinct_features = out.select(
        [pl.col(c).fill_null(0.0).fill_nan(0.0).cast(pl.Float32) for c in FEATURE_COLUMNS]
    ).collect()
    return distinct_features, inverse
