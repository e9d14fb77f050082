"""Sampled exports: the rate is inferred per dump (or configured) and the features see the
counts divided back, so a 1:N sampled copy of traffic gets the verdicts of the traffic."""

from __future__ import annotations

import polars as pl
import pytest

from engine.detect.sampling import infer_rates, unsample
from engine.ingest import read_flows
from tests.conftest import ROOT

# a real dnscat2 tunnel (nDPI's dns_exfiltration.pcap) replayed by nfpcapd: see its README
TUNNEL = sorted((ROOT / "data/samples/real-dnscat2-ndpi/nfpcapd").glob("*.txt.gz"))
# one real minute of an ISP's export, unsampled (chrispassas nfcapd.sample): see its README
ISP = sorted((ROOT / "data/samples/real-isp-minute/routerlike").glob("*.txt.gz"))
# 1:3000 sampled ISP transit (chrispassas nfcapd-large-bz2): see its README
SAMPLED = sorted((ROOT / "data/samples/real-isp-transit/routerlike").glob("*.txt.gz"))


def _multiplied(flows: pl.DataFrame, rate: int) -> pl.DataFrame:
    """What a 1:rate sampling exporter prints for these flows had each been sampled once per
    packet: counts multiplied by the rate."""
    return flows.with_columns(pl.col("packets") * rate, pl.col("bytes") * rate)


def test_rates_are_inferred_per_dump_file():
    isp, _ = read_flows(ISP, timezone="UTC")
    transit, _ = read_flows(SAMPLED, timezone="UTC")
    both = pl.concat([isp, transit])
    rates = infer_rates(both)
    assert set(rates.head(isp.height).to_list()) == {1}
    assert set(rates.tail(transit.height).to_list()) == {3000}


def test_few_flows_or_small_common_divisors_are_not_sampling():
    flows, _ = read_flows(TUNNEL, timezone="UTC")
    assert set(infer_rates(flows.head(5).pipe(_multiplied, 100)).to_list()) == {1}  # too few to tell
    assert set(infer_rates(flows.pipe(_multiplied, 2)).to_list()) == {1}  # 1:2 looks like Zeek's 2-packet flows


def test_unsample_divides_back_and_keeps_bytes_per_packet():
    flows, _ = read_flows(TUNNEL, timezone="UTC")
    back = unsample(_multiplied(flows, 1000), 1000)
    assert back["packets"].to_list() == flows["packets"].to_list()
    assert back["bytes"].to_list() == flows["bytes"].to_list()
    assert unsample(flows, 1) is flows


@pytest.fixture(scope="module")
def model():
    from engine.models.store import BUNDLED_MODEL, load_model

    return load_model(BUNDLED_MODEL)


def test_a_sampled_copy_gets_the_verdicts_of_the_traffic(model):
    flows, _ = read_flows(TUNNEL, timezone="UTC")
    plain = model.score(flows)
    sampled = model.score(_multiplied(flows, 1000))
    assert sampled["verdict"].to_list() == plain["verdict"].to_list()
    assert sampled["score"].to_list() == pytest.approx(plain["score"].to_list())
    assert sampled["reasons"].str.contains("sampled 1:1000").all()
    assert sampled["packets"].to_list() == [p * 1000 for p in flows["packets"]]  # output as printed


def test_configured_rate_wins_and_one_turns_inference_off(model):
    flows, _ = read_flows(TUNNEL, timezone="UTC")
    sampled = _multiplied(flows, 1000)
    model.sampling = 1
    try:
        assert not model.score(sampled)["reasons"].str.contains("sampled").any()
        model.sampling = 1000
        assert model.score(sampled)["verdict"].to_list() == model.score(flows)["verdict"].to_list()
    finally:
        model.sampling = 0
