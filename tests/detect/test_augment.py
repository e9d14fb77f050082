"""engine.detect.augment: attack-only hosts are hidden inside normal hosts for training."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from engine.detect.augment import host_mapping, mix_hosts, thin_attacks
from engine.detect.detector import Detector

T0 = datetime(2026, 11, 22, 12, 0)


def flow(t, src, sport, dst, dport, label, proto="UDP", packets=1, nbytes=70):
    return {"ts_first": T0 + timedelta(seconds=t), "ts_last": T0 + timedelta(seconds=t),
            "duration": 0.0, "proto": proto, "src_addr": src, "src_port": sport,
            "dst_addr": dst, "dst_port": dport, "tcp_flags": "", "packets": packets,
            "bytes": nbytes, "flows": 1, "label": label}


def frame(rows):
    return pl.DataFrame(rows).with_columns(pl.col("packets", "bytes", "flows").cast(pl.Int64))


def test_each_attack_only_client_is_mapped_to_a_normal_stub_active_at_the_same_time():
    rows = [
        # two stubs: one active with the flood, one an hour later
        *[flow(t, "10.0.0.1", 40000 + t, "10.9.9.9", 53, "normal") for t in range(5)],
        *[flow(t, "10.9.9.9", 53, "10.0.0.1", 40000 + t, "normal") for t in range(5)],
        *[flow(3600 + t, "10.0.0.2", 41000 + t, "10.9.9.9", 53, "normal") for t in range(5)],
        # the flooder only floods; the resolver (a server) is never remapped
        *[flow(t, "10.0.0.66", 56000, "10.9.9.9", 53, "dns_flood") for t in range(5)],
        # the resolver's own forwarding leg to a tunnel server: the resolver is no stub
        *[flow(t, "10.9.9.9", 33000 + t, "192.0.2.7", 53, "tunnel") for t in range(5)],
    ]
    flows = frame(rows)
    mapping = host_mapping(flows.drop("label"), flows["label"])
    assert mapping == {"10.0.0.66": "10.0.0.1"}
    mixed = mix_hosts(flows, mapping)
    assert "10.0.0.66" not in set(mixed["src_addr"]) | set(mixed["dst_addr"])
    assert mixed.filter(pl.col("label") == "dns_flood")["src_addr"].unique().to_list() == ["10.0.0.1"]
    assert mixed["label"].to_list() == flows["label"].to_list()  # labels travel with the flows


def test_nothing_to_mix_without_both_kinds_of_host():
    flows = frame([flow(t, "10.0.0.1", 40000 + t, "10.9.9.9", 53, "normal") for t in range(5)])
    assert host_mapping(flows.drop("label"), flows["label"]) == {}
    assert mix_hosts(flows, {}) is flows


def test_fit_learns_from_the_mixed_copy_but_counts_each_label_once():
    rows = [
        *[flow(t, f"10.0.0.{1 + t % 5}", 40000 + t, "10.9.9.9", 53, "normal") for t in range(60)],
        *[flow(t / 10, "10.0.0.66", 56000, "10.9.9.9", 53, "dns_flood") for t in range(300)],
    ]
    flows = frame(rows)
    detector = Detector(n_estimators=4, outlier="none", n_jobs=1).fit(flows.drop("label"), flows["label"])
    assert detector.label_counts_ == {"normal": 60, "dns_flood": 300}
    plain = Detector(n_estimators=4, outlier="none", n_jobs=1, mix_hosts=False)
    assert plain.fit(flows.drop("label"), flows["label"]).label_counts_ == detector.label_counts_


def test_thinning_slows_attacks_and_leaves_normal_flows_alone():
    rows = [
        *[flow(t, "10.0.0.1", 40000 + t, "10.9.9.9", 53, "normal") for t in range(100)],
        *[flow(t / 100, "10.0.0.66", 56000, "10.9.9.9", 53, "dns_flood") for t in range(4000)],
        # a router-shaped flood: one flow of many packets
        flow(0, "10.0.0.67", 56001, "10.9.9.9", 53, "dns_flood", packets=2400, nbytes=2400 * 70),
        flow(0, "10.0.0.68", 56002, "10.9.9.9", 53, None),
    ]
    flows = frame(rows)
    thinned, keep, weight = thin_attacks(flows.drop("label"), flows["label"], 8, seed=1)
    kept = thinned.with_columns(label=flows["label"].filter(pl.Series(keep)), w=pl.Series(weight))
    normal = kept.filter(pl.col("label") == "normal")
    assert normal.drop("label", "w").equals(flows.filter(pl.col("label") == "normal").drop("label"))
    assert set(normal["w"]) == {1.0}
    one_packet = kept.filter((pl.col("label") == "dns_flood") & (pl.col("packets") == 1))
    assert 400 < one_packet.height < 600  # about 4000 / 8
    assert set(one_packet["w"]) == {8.0}
    big = kept.filter(pl.col("src_port") == 56001)
    assert big["packets"].to_list() == [300] and big["bytes"].to_list() == [300 * 70]
    assert kept.filter(pl.col("label").is_null()).height == 1  # unlabelled: context, kept


def test_fit_without_thinning_or_mixing_is_still_possible():
    rows = [
        *[flow(t, f"10.0.0.{1 + t % 5}", 40000 + t, "10.9.9.9", 53, "normal") for t in range(60)],
        *[flow(t / 10, "10.0.0.66", 56000, "10.9.9.9", 53, "dns_flood") for t in range(300)],
    ]
    flows = frame(rows)
    for params in ({"thin": 0}, {"thin": 0, "mix_hosts": False}, {"thin": 4}):
        detector = Detector(n_estimators=4, outlier="none", n_jobs=1, **params)
        assert detector.fit(flows.drop("label"), flows["label"]).label_counts_ == {
            "normal": 60, "dns_flood": 300}
