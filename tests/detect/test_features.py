"""Features: window context joins back to the right flows, history crosses rotations, values are
finite, and the distinct-row form is the same as the per-flow form."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.schema import FLOW_SCHEMA, conform
from engine.detect.features import (
    FEATURE_COLUMNS,
    build_feature_groups,
    build_features,
    seed_features,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
T0 = datetime(2026, 11, 22, 10, 0, 0)


def flow(sec: float, src: str, sport: int, dst: str, dport: int, *, proto="UDP", packets=1,
         nbytes=60, file="a.txt", line=1, flags="........") -> dict:
    ts = T0 + timedelta(seconds=sec)
    return {"ts_first": ts, "ts_last": ts, "duration": 0.0, "proto": proto, "src_addr": src,
            "src_port": sport, "dst_addr": dst, "dst_port": dport, "tcp_flags": flags, "tos": 0,
            "packets": packets, "bytes": nbytes, "flows": 1, "approx": False, "file": file,
            "line": line}


def frame(rows: list[dict]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows, schema=FLOW_SCHEMA))


def col(features: pl.DataFrame, name: str) -> list[float]:
    return [round(v, 5) for v in features[name].to_list()]


def lg(n: float) -> float:
    return round(math.log1p(n), 5)


def test_client_windows_join_back_to_each_flow():
    flows = frame([
        flow(1, "10.0.0.1", 40001, "10.0.0.53", 53),            # query by client .1
        flow(1.1, "10.0.0.53", 53, "10.0.0.1", 40001, nbytes=300),  # its answer: same client
        flow(2, "10.0.0.1", 40002, "10.0.0.53", 53),
        flow(15, "10.0.0.1", 40003, "10.0.0.53", 53),            # next 10 s window
        flow(3, "10.0.0.2", 40004, "10.0.0.53", 53),             # another client
    ])
    f = build_features(flows)
    assert f.height == flows.height
    assert f.columns == list(FEATURE_COLUMNS)
    # the answer counts for the client at the other end, not for the resolver
    assert col(f, "c10s_flows") == [lg(3), lg(3), lg(3), lg(1), lg(1)]
    assert col(f, "c60s_flows") == [lg(4), lg(4), lg(4), lg(4), lg(1)]
    assert col(f, "role_answer") == [0, 1, 0, 0, 0]
    # the resolver serves two clients in the first 10 s, one in the next
    assert col(f, "s10s_peers") == [lg(2), lg(2), lg(2), lg(1), lg(2)]
    # one query and its answer form one conversation (client socket + server)
    assert col(f, "v_flows") == [lg(2), lg(2), lg(1), lg(1), lg(1)]
    # answer bytes per query byte of the conversation
    assert f["v_ans_q"][0] == pytest.approx(math.log(301 / 61), rel=1e-5)
    # per-flow: a 60-byte packet is not tiny, a 28-byte one is
    tiny = build_features(frame([flow(1, "10.0.0.9", 1, "10.0.0.53", 53, nbytes=28)]))
    assert tiny["tiny"][0] == 1.0 and f["tiny"][0] == 0.0


def test_rows_keep_input_order():
    flows = frame([flow(i * 0.7, f"10.0.0.{i % 5}", 40000 + i, "10.0.0.53", 53, nbytes=50 + i, line=i)
                   for i in range(60)])
    f = build_features(flows)
    perm = np.random.default_rng(0).permutation(flows.height)
    g = build_features(flows[perm])
    assert np.array_equal(f.to_numpy()[perm], g.to_numpy())


def test_history_window_spans_rotation_boundary():
    earlier = frame([flow(55, "10.0.0.1", 40001, "10.0.0.53", 53, file="one.txt"),
                     flow(56, "10.0.0.1", 40002, "10.0.0.53", 53, file="one.txt")])
    later = frame([flow(58, "10.0.0.1", 40003, "10.0.0.53", 53, file="two.txt")])
    alone = build_features(later)
    joined = build_features(later, history=earlier)
    assert joined.height == 1  # only the flows being scored come back
    assert col(alone, "c10s_flows") == [lg(1)]
    assert col(joined, "c10s_flows") == [lg(3)]
    assert col(joined, "c60s_peers") == [lg(1)]


def test_history_outside_the_windows_changes_nothing():
    old = frame([flow(-600, "10.0.0.1", 40001, "10.0.0.53", 53)])
    later = frame([flow(58, "10.0.0.1", 40003, "10.0.0.53", 53)])
    assert build_features(later, history=old).equals(build_features(later))


def test_distinct_groups_expand_to_the_per_flow_features():
    flows = frame([flow(i * 0.01, "10.0.0.7", 50000, "10.0.0.53", 53) for i in range(200)]
                  + [flow(1, "10.0.0.8", 40000 + i, "10.0.0.53", 53) for i in range(5)])
    distinct, inverse = build_feature_groups(flows)
    assert len(inverse) == flows.height
    assert distinct.height < 10  # a flood from one socket is one row
    assert distinct[inverse].equals(build_features(flows))


def test_features_are_finite_on_real_dumps_and_edge_values():
    from engine.ingest import read_flows

    path = sorted((SAMPLES / "lab-mixed-dev" / "routerlike").glob("*.txt.gz"))[-1]
    flows, _ = read_flows([path], timezone="UTC")
    weird = frame([flow(0, "10.0.0.1", 0, "10.0.0.2", 0, proto="ICMP", packets=0, nbytes=0),
                   flow(0, "2001:db8::1", 53, "2001:db8::2", 53, packets=10**9, nbytes=10**12)])
    for f in (build_features(flows), build_features(weird), build_features(flows[:0])):
        assert np.isfinite(f.to_numpy()).all()
    assert build_features(flows).height == flows.height
    assert build_features(flows[:0]).columns == list(FEATURE_COLUMNS)


def test_missing_ports_keep_clients_apart():
    rows = [flow(1, f"10.0.0.{i}", 0, "10.0.0.53", 0, proto="GRE") for i in range(3)]
    flows = frame(rows).with_columns(src_port=pl.lit(None, pl.Int32), dst_port=pl.lit(None, pl.Int32))
    f = build_features(flows)
    assert col(f, "v_flows") == [lg(1)] * 3
    assert col(f, "c10s_flows") == [lg(1)] * 3


def test_seed_features_follow_nfdump():
    s = seed_features(frame([flow(0, "a", 1, "b", 53, packets=4, nbytes=400)])
                      .with_columns(duration=pl.lit(2.0)))
    assert s.row(0, named=True) == {"duration": 2.0, "packets": 4.0, "bytes": 400.0, "pps": 2.0,
                                    "bps": 1600.0, "Bpp": 100.0, "flows": 1.0}


def test_victim_side_of_reflection():
    """A spoofed victim's ICMP port-unreachable replies to a reflector mark the pair."""
    flows = frame([
        # victim .9: two big answers to a socket that sent no query, and its kernel's errors
        flow(1, "10.0.0.53", 53, "10.0.0.9", 7000, nbytes=3000),
        flow(1.1, "10.0.0.53", 53, "10.0.0.9", 7000, nbytes=3000),
        flow(1.2, "10.0.0.9", 0, "10.0.0.53", 771, proto="ICMP", nbytes=590),
        flow(1.3, "10.0.0.9", 0, "10.0.0.53", 771, proto="ICMP", nbytes=590),
        # normal client .1: a query and its answer
        flow(2, "10.0.0.1", 40001, "10.0.0.53", 53),
        flow(2.1, "10.0.0.53", 53, "10.0.0.1", 40001, nbytes=300),
    ])
    f = build_features(flows)
    assert col(f, "icmp_unreach") == [0, 0, 1, 1, 0, 0]
    # every flow between victim and reflector (answers and errors) carries the pair's share
    assert col(f, "p10s_unreach") == [0.5, 0.5, 0.5, 0.5, 0, 0]
    assert col(f, "p60s_unreach") == [0.5, 0.5, 0.5, 0.5, 0, 0]
    assert np.isfinite(f.select(FEATURE_COLUMNS).to_numpy()).all()


def test_victim_errors_count_in_packets_whatever_the_exporter():
    """A router folds a minute of ICMP errors into one flow: the share is the same."""
    flows = frame([
        *[flow(1 + i / 10, "10.0.0.53", 53, "10.0.0.9", 7000 + i, nbytes=3000) for i in range(4)],
        flow(1.05, "10.0.0.9", 0, "10.0.0.53", 771, proto="ICMP", packets=4, nbytes=4 * 590),
    ])
    assert col(build_features(flows), "p10s_unreach") == [0.5] * 5


def test_a_conversation_is_measured_against_its_pair():
    """A host floods from one socket and also looks names up: each lookup is a small share of
    the pair and smaller than the pair's average; the flood's socket is most of it."""
    flows = frame([
        *[flow(i / 20, "10.0.0.7", 56000, "10.0.0.53", 53, nbytes=70) for i in range(18)],
        flow(0.5, "10.0.0.7", 41000, "10.0.0.53", 53, nbytes=70),
        flow(0.6, "10.0.0.53", 53, "10.0.0.7", 41000, nbytes=120),
        flow(0.7, "10.0.0.7", 41001, "10.0.0.53", 53, nbytes=70),
        flow(0.8, "10.0.0.53", 53, "10.0.0.7", 41001, nbytes=3070),
    ])
    f = build_features(flows)
    assert col(f, "v_share_of_pair")[:18] == [0.81818] * 18
    assert col(f, "v_share_of_pair")[18:] == [0.09091] * 4
    # the pair's answers average (120 + 3070) / 2 bytes: the small answer is below, the big above
    a_vs = col(f, "v_a_vs_pair")
    assert a_vs[18] < 0 < a_vs[20]
    assert col(f, "v_q_vs_pair") == [0.0] * 22


def test_answer_size_spread_tells_data_from_repetition():
    """A tunnel's answers carry data and vary in size; a flood's answers repeat one reply."""
    sizes = [80, 120, 200, 90, 160, 240]
    flows = frame([
        *[flow(i / 10, "10.0.0.53", 53, "10.0.0.5", 45000, nbytes=b) for i, b in enumerate(sizes)],
        *[flow(i / 10, "10.0.0.53", 53, "10.0.0.6", 46000, nbytes=70) for i in range(6)],
        # router shape: a flow of 3 packets is one sample, at its bytes per packet
        flow(0, "10.0.0.53", 53, "10.0.0.7", 47000, packets=3, nbytes=210),
        flow(0, "10.0.0.8", 48000, "10.0.0.53", 53),
    ])
    f = build_features(flows)
    spread = float(np.std(sizes) / np.mean(sizes))
    assert col(f, "v_a_cv")[:6] == [round(spread, 5)] * 6
    assert col(f, "p60s_a_cv")[:6] == [round(spread, 5)] * 6
    assert col(f, "v_a_cv")[6:] == [0.0] * 8  # one repeated size, or no answer: no spread, not NaN
