"""Incidents: flagged flows grouped into attack episodes (engine.detect.incidents)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from engine.core.schema import SCORED_SCHEMA
from engine.detect.incidents import IncidentTracker, incident_id

T0 = datetime(2026, 11, 22, 10, 0, 0)
RESOLVER = "10.0.0.53"


def flow(seconds: float, src: str, sport: int, dst: str, dport: int, verdict: str,
         score: float = 1.0, packets: int = 1, size: int = 100) -> dict:
    at = T0 + timedelta(seconds=seconds)
    return {
        "ts_first": at, "ts_last": at, "duration": 0.0, "proto": "UDP", "src_addr": src,
        "src_port": sport, "dst_addr": dst, "dst_port": dport, "tcp_flags": "........", "tos": 0,
        "packets": packets, "bytes": size, "flows": 1, "approx": False, "file": "f", "line": 1,
        "score": score, "verdict": verdict, "reasons": "",
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCORED_SCHEMA)


def test_amplification_groups_many_reflectors_around_one_victim():
    rows = [flow(i, f"192.0.2.{i % 50}", 53, "10.1.1.7", 40000 + i, "amplification", size=3000)
            for i in range(200)]
    rows += [flow(i, "10.1.1.8", 40000 + i, RESOLVER, 53, "normal", score=0.1) for i in range(20)]
    tracker = IncidentTracker(0.5)
    ids, events = tracker.add(frame(rows))
    table = tracker.table()
    assert table.height == 1
    row = table.row(0, named=True)
    assert (row["class"], row["victims"], row["flows"], row["bytes"]) == ("amplification", "10.1.1.7", 200, 600_000)
    assert row["reflectors"].startswith("192.0.2.0,") and row["reflectors"].endswith("+40 more")
    assert row["peers"] == 50 and row["state"] == "open"
    assert ids[:200].n_unique() == 1 and ids[200:].null_count() == 20
    assert [e.kind for e in events] == ["open"]


def test_a_flood_of_a_resolver_names_the_resolver_victim_and_the_attackers():
    rows = [flow(i / 10, f"10.2.0.{i % 3}", 50000 + i, RESOLVER, 53, "dns_flood") for i in range(300)]
    tracker = IncidentTracker(0.5)
    tracker.add(frame(rows))
    row = tracker.table().row(0, named=True)
    assert (row["victims"], row["attackers"]) == (RESOLVER, "10.2.0.0,10.2.0.1,10.2.0.2")
    assert row["peak_rate"] == 10.0  # 100 flows in the busiest 10 s


def test_an_incident_continues_across_rotations_and_closes_after_a_quiet_gap():
    tracker = IncidentTracker(0.5, quiet_seconds=60)
    tunnel = lambda s: flow(s, "10.3.0.9", 33000, RESOLVER, 53, "tunnel")  # noqa: E731
    first, events1 = tracker.add(frame([tunnel(s) for s in range(0, 50, 5)]))
    second, events2 = tracker.add(frame([tunnel(s) for s in range(60, 110, 5)]))
    assert first.n_unique() == 1 and second.unique().to_list() == first.unique().to_list()
    assert [e.kind for e in events1] == ["open"] and [e.kind for e in events2] == ["update"]
    row = tracker.table().row(0, named=True)
    assert row["flows"] == 20 and row["tunnel_endpoints"] == "10.3.0.9" and row["resolvers"] == RESOLVER
    # Quiet for more than 60 s of flow time (other traffic moves the clock): it closes, and
    # the same pair later is a new incident.
    _, events3 = tracker.add(frame([flow(300, "10.9.9.9", 1000, RESOLVER, 53, "normal", score=0.0)]))
    assert [e.kind for e in events3] == ["close"] and events3[0].row["state"] == "closed"
    again, events4 = tracker.add(frame([tunnel(400)]))
    assert again[0] != first[0] and [e.kind for e in events4] == ["open"]


def test_a_gap_inside_one_batch_splits_the_episode():
    tracker = IncidentTracker(0.5, quiet_seconds=60)
    rows = [flow(s, "10.4.0.1", 1000 + s, RESOLVER, 53, "zero_packet", size=28) for s in (0, 10, 20, 500, 510)]
    ids, events = tracker.add(frame(rows))
    assert ids.to_list()[:3] == [ids[0]] * 3 and ids[3] == ids[4] != ids[0]
    assert sorted(e.kind for e in events) == ["close", "open", "open"]


def test_a_scanner_is_the_anchor_of_its_scan_and_ids_are_stable():
    rows = [flow(i, "10.5.0.66", 45000, f"10.6.0.{i}", 53, "scan") for i in range(100)]
    a, b = IncidentTracker(0.5), IncidentTracker(0.5)
    ids_a, _ = a.add(frame(rows))
    ids_b, _ = b.add(frame(rows[::-1]))
    assert ids_a.unique().to_list() == ids_b.unique().to_list() == [incident_id("scan", "10.5.0.66", T0)]
    row = a.table().row(0, named=True)
    assert row["attackers"] == "10.5.0.66" and row["peers"] == 100


def test_flows_below_the_threshold_or_normal_are_in_no_incident():
    rows = [flow(0, "10.7.0.1", 1, RESOLVER, 53, "tunnel", score=0.4),
            flow(1, "10.7.0.1", 1, RESOLVER, 53, "normal", score=0.9)]
    tracker = IncidentTracker(0.5)
    ids, events = tracker.add(frame(rows))
    assert ids.null_count() == 2 and events == [] and tracker.table().height == 0


def test_close_all_ends_every_open_incident():
    tracker = IncidentTracker(0.5)
    tracker.add(frame([flow(0, "10.8.0.1", 1, RESOLVER, 53, "tunnel")]))
    closed = tracker.close_all()
    assert [e.kind for e in closed] == ["close"] and tracker.table()["state"].to_list() == ["closed"]
    assert closed[0].record()["first_seen"] == T0.isoformat()


def test_one_reflector_for_three_victims_is_three_amplifications_each_named_plainly():
    rows = [flow(i, RESOLVER, 53, f"10.1.1.{i % 3}", 40000 + i, "amplification", size=3000) for i in range(30)]
    tracker = IncidentTracker(0.5)
    tracker.add(frame(rows))
    table = tracker.table()
    assert sorted(table["victims"]) == ["10.1.1.0", "10.1.1.1", "10.1.1.2"]
    assert set(table["summary"]) == {f"{RESOLVER} -> 10.1.1.{i}" for i in range(3)}
    scan = IncidentTracker(0.5)
    scan.add(frame([flow(i, "10.5.0.66", 45000, f"10.6.0.{i}", 53, "scan") for i in range(100)]))
    assert scan.table()["summary"].to_list() == ["10.5.0.66 -> 100 victims"]
