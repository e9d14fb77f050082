"""Scope: which flows are DNS-relevant (filter, ICMP errors about DNS pairs, port-53 probers),
and that out-of-scope flows keep their context but get no DNS verdict."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from engine.core.schema import FLOW_SCHEMA
from engine.detect.scope import (
    ICMP_ERROR,
    IN_FILTER,
    OUT,
    OUT_REASON,
    PROBER,
    Scope,
    ScopeError,
    score_scoped,
    split,
)

T0 = datetime(2026, 1, 1, 12, 0, 0)
BASE = {
    "ts_first": T0, "ts_last": T0, "duration": 0.0, "proto": "UDP",
    "src_addr": "192.0.2.10", "src_port": 40000, "dst_addr": "198.51.100.53", "dst_port": 53,
    "tcp_flags": "........", "tos": 0, "packets": 1, "bytes": 70, "flows": 1, "approx": False,
    "file": "hand", "line": 0,
}


def flows(*rows: dict) -> pl.DataFrame:
    full = [{**BASE, "line": i + 1, **row} for i, row in enumerate(rows)]
    return pl.DataFrame(full, schema=FLOW_SCHEMA)


def test_port_53_either_side_is_in_scope_and_the_rest_is_not():
    df = flows(
        {},  # query
        {"src_addr": "198.51.100.53", "src_port": 53, "dst_addr": "192.0.2.10", "dst_port": 40000},
        {"proto": "TCP", "dst_port": 443, "tcp_flags": "...AP...", "bytes": 900},
    )
    assert Scope().classify(df).to_list() == [IN_FILTER, IN_FILTER, OUT]


def test_icmp_unreachable_between_a_dns_pair_is_in_scope_elsewhere_not():
    df = flows(
        {"src_addr": "203.0.113.5", "src_port": 53, "dst_addr": "192.0.2.77", "dst_port": 1234, "bytes": 3000},
        # the victim's port unreachable back to the reflector (ICMP 3.3 = port 771)
        {"proto": "ICMP", "src_addr": "192.0.2.77", "src_port": 0, "dst_addr": "203.0.113.5", "dst_port": 771},
        # an unreachable between two hosts that exchange no DNS
        {"proto": "ICMP", "src_addr": "192.0.2.78", "src_port": 0, "dst_addr": "203.0.113.9", "dst_port": 771},
    )
    assert Scope().classify(df).to_list() == [IN_FILTER, ICMP_ERROR, OUT]
    assert Scope(filter="port 53", icmp_errors=False).classify(df).to_list() == [IN_FILTER, OUT, OUT]


def test_icmp_error_context_comes_from_history_too():
    history = flows({"src_addr": "203.0.113.5", "src_port": 53, "dst_addr": "192.0.2.77", "dst_port": 1234})
    now = flows({"proto": "ICMP", "src_addr": "192.0.2.77", "src_port": 0, "dst_addr": "203.0.113.5",
                 "dst_port": 771, "ts_first": T0 + timedelta(seconds=30)})
    assert Scope().classify(now, history).to_list() == [ICMP_ERROR]
    assert Scope().classify(now).to_list() == [OUT]


def test_a_scanner_that_probes_port_53_brings_its_other_probes_into_scope():
    syn = {"proto": "TCP", "src_addr": "192.0.2.66", "tcp_flags": "......S.", "bytes": 44}
    df = flows(
        {**syn, "dst_addr": "198.51.100.1", "dst_port": 53},
        {**syn, "dst_addr": "198.51.100.1", "dst_port": 22},
        {**syn, "dst_addr": "198.51.100.1", "dst_port": 80},
        # the target's reset to the scanner
        {"proto": "TCP", "src_addr": "198.51.100.1", "src_port": 22, "dst_addr": "192.0.2.66",
         "dst_port": 40000, "tcp_flags": "...A.R..", "bytes": 40},
        # one background probe of port 53 alone: that flow only
        {**syn, "src_addr": "192.0.2.99", "dst_addr": "198.51.100.1", "dst_port": 53},
        {"proto": "TCP", "src_addr": "192.0.2.99", "dst_addr": "198.51.100.1", "dst_port": 443,
         "tcp_flags": "...AP...", "bytes": 900},
    )
    assert Scope().classify(df).to_list() == [IN_FILTER, PROBER, PROBER, PROBER, IN_FILTER, OUT]
    assert Scope(prober_targets=0).classify(df).to_list() == [IN_FILTER, OUT, OUT, OUT, IN_FILTER, OUT]


def test_a_busy_client_that_queries_and_browses_is_no_prober():
    df = flows(
        *[{"dst_addr": f"198.51.100.{i}", "src_port": 40000 + i} for i in range(5)],
        *[{"proto": "TCP", "dst_addr": f"203.0.113.{i}", "dst_port": 443, "tcp_flags": "...AP.SF",
           "packets": 12, "bytes": 5000} for i in range(5)],
    )
    assert Scope().classify(df).to_list() == [IN_FILTER] * 5 + [OUT] * 5


def test_any_puts_everything_in_scope():
    df = flows({"proto": "TCP", "dst_port": 443})
    assert Scope(filter="any").classify(df).to_list() == [IN_FILTER]


@pytest.mark.parametrize("text", ["port 53 and", "prot udp", "port 53 or (dst port 53"])
def test_a_bad_scope_filter_says_where(text):
    with pytest.raises(ScopeError) as err:
        Scope(filter=text)
    assert err.value.filter_error is not None
    assert "^" in str(err.value)
    assert "[scope] filter" in str(err.value)


def test_an_empty_scope_filter_is_refused():
    with pytest.raises(ScopeError, match="empty"):
        Scope(filter="  ")


def test_context_keeps_every_flow_that_shares_an_address_with_an_in_scope_flow():
    df = flows(
        {},
        {"proto": "TCP", "dst_addr": "203.0.113.1", "dst_port": 443, "tcp_flags": "...AP...", "bytes": 900},
        {"proto": "TCP", "src_addr": "192.0.2.200", "dst_addr": "203.0.113.1", "dst_port": 443,
         "tcp_flags": "...AP...", "bytes": 900},
    )
    mask, _why, inside, context = split(df, Scope())
    assert mask.tolist() == [True, False, False]
    assert inside["line"].to_list() == [1]
    assert context["line"].to_list() == [2]  # the client's own web flow; the stranger's is not context


class Recorder:
    """A stand-in detector: flags every flow it sees and remembers what it was given."""

    threshold = 0.5

    def score(self, flows, history=None):
        self.seen = flows["line"].to_list()
        self.context = [] if history is None else history["line"].to_list()
        return flows.with_columns(score=pl.lit(0.9), verdict=pl.lit("tunnel"), reasons=pl.lit("clf:tunnel 0.9"))


def test_out_of_scope_flows_skip_the_model_and_say_why():
    df = flows(
        {"proto": "TCP", "dst_addr": "203.0.113.1", "dst_port": 443, "tcp_flags": "...AP...", "bytes": 900},
        {},
        {"proto": "TCP", "src_addr": "192.0.2.66", "dst_addr": "203.0.113.7", "dst_port": 22,
         "tcp_flags": "...AP...", "bytes": 900},
    )
    rec = Recorder()
    scored = score_scoped(rec.score, df, Scope())
    assert rec.seen == [2]
    assert rec.context == [1]
    assert scored["line"].to_list() == [1, 2, 3]
    assert scored["verdict"].to_list() == ["normal", "tunnel", "normal"]
    assert scored["score"].to_list() == [0.0, 0.9, 0.0]
    assert scored["reasons"][0] == OUT_REASON and scored["reasons"][2] == OUT_REASON


def test_an_all_out_of_scope_batch_never_calls_the_model():
    df = flows({"proto": "TCP", "dst_port": 443, "tcp_flags": "...AP...", "bytes": 900})
    rec = Recorder()
    scored = score_scoped(rec.score, df, Scope())
    assert not hasattr(rec, "seen")
    assert scored["verdict"].to_list() == ["normal"]


def test_expanded_scope_is_named_in_reasons():
    syn = {"proto": "TCP", "src_addr": "192.0.2.66", "tcp_flags": "......S.", "bytes": 44}
    df = flows(*[{**syn, "dst_addr": "198.51.100.1", "dst_port": p} for p in (53, 22, 80)])
    scored = score_scoped(Recorder().score, df, Scope())
    assert scored["reasons"][1].startswith("scope:prober; ")
    assert not scored["reasons"][0].startswith("scope:")


def test_short_dns_lookups_of_a_home_client_are_no_probes():
    # a real ISP minute (chrispassas nfcapd.sample): a CPE client's 57-59-byte lookups to its
    # resolvers from random ports, beside its web flows
    lookups = [{"src_addr": "192.168.0.70", "src_port": 3000 + i, "dst_addr": f"189.40.198.{81 + i % 2}",
                "bytes": 59} for i in range(6)]
    df = flows(*lookups, {"proto": "TCP", "src_addr": "192.168.0.70", "dst_addr": "157.240.216.61",
                          "dst_port": 443, "tcp_flags": "...A....", "packets": 6, "bytes": 437})
    assert Scope().classify(df).to_list() == [IN_FILTER] * 6 + [OUT]
