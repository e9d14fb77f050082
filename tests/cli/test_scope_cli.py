"""`flowtriage score` on a real, mostly non-DNS dump: out-of-scope flows keep their rows but get
no DNS verdict and say why; `[scope] filter = "any"` scores every flow."""

from __future__ import annotations

import polars as pl

from engine.cli.entry import main
from engine.detect.scope import OUT_REASON
from tests.conftest import ROOT

# one real minute of an ISP's export (chrispassas nfcapd.sample, MIT): see its README
ISP = sorted((ROOT / "data/samples/real-isp-minute/routerlike").glob("*.txt.gz"))


def _score(tmp_path, config_text: str) -> pl.DataFrame:
    cfg = tmp_path / "c.toml"
    cfg.write_text(config_text)
    out = tmp_path / "out.parquet"
    assert main(["score", *map(str, ISP), "--all", "-q", "-o", str(out), "--config", str(cfg)]) == 0
    return pl.read_parquet(out)


def test_non_dns_flows_are_read_but_get_no_dns_verdict(tmp_path):
    scored = _score(tmp_path, '[ingest]\ntimezone = "UTC"\n')
    dns = (pl.col("src_port") == 53) | (pl.col("dst_port") == 53)
    assert scored.height == 3018  # every flow is in the output
    out = scored.filter(pl.col("reasons").str.starts_with(OUT_REASON))
    assert out.height > 1500 and out.filter(dns).height == 0
    assert set(out["verdict"]) == {"normal"} and set(out["score"]) == {0.0}
    assert not scored.filter(dns)["reasons"].str.starts_with(OUT_REASON).any()


def test_scope_any_scores_every_flow(tmp_path):
    scored = _score(tmp_path, '[scope]\nfilter = "any"\n[ingest]\ntimezone = "UTC"\n')
    assert not scored["reasons"].str.starts_with(OUT_REASON).any()
