"""One poisonous line never stops a batch: `score` and `parse` write every other flow, exit 0,
and name the file, line and reason of the skip (the line that crashed scoring before)."""

from __future__ import annotations

import gzip
import json

import pytest

from engine.cli.entry import main
from tests.conftest import ROOT

EXTENDED = ROOT / "tests/fixtures/formats/isp-port53.nfdump-1.7.8.extended.txt.gz"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.replace("2019-08-12", "1969-12-31", 1),  # zero time under TZ=America/New_York
        lambda s: s.replace("  744000", " 9999999.9 T", 1),
        lambda s: s.replace(":6615 ", ":99999", 1),
    ],
    ids=["before-1970", "scaled-overflow", "port-99999"],
)
def test_score_keeps_every_other_flow_and_reports_the_poison_line(tmp_path, capsys, mutate):
    lines = gzip.decompress(EXTENDED.read_bytes()).decode().splitlines(keepends=True)
    path = tmp_path / "t.txt"
    path.write_text(lines[0] + mutate(lines[1]) + "".join(lines[2:]))
    out = tmp_path / "o.jsonl"
    assert main(["score", str(path), "-o", str(out), "--all"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    flows = sum(1 for x in lines[1:] if x[:1].isdigit())
    assert len(rows) == flows - 1
    assert sorted(r["line"] for r in rows) == list(range(3, flows + 2))
    err = capsys.readouterr().err
    assert "t.txt" in err and "line 2" in err


def test_a_detector_failure_on_one_row_skips_that_row_only(tmp_path, capsys):
    """Whatever else a scorer chokes on, the rows it cannot score are skipped with a reason,
    and the rest of the batch is written (a bisection finds the culprits)."""
    import polars as pl

    from engine.detect.scorer import score_or_skip

    class Picky:
        def score(self, flows, history=None, **_):
            if (flows["src_port"] == 6615).any():
                raise ValueError("cannot score port 6615")
            return flows.with_columns(score=pl.lit(0.0), verdict=pl.lit("normal"),
                                      reasons=pl.lit(""))

    from engine.ingest import read_dump

    flows = read_dump(EXTENDED, final=True).flows
    bad = int((flows["src_port"] == 6615).sum())
    assert bad >= 1
    scored, kept, skipped = score_or_skip(Picky(), flows, history=flows.head(0))
    assert scored.height == flows.height - bad
    assert len(skipped) == bad
    assert all("cannot score port 6615" in s.reason for s in skipped)
    assert {s.line for s in skipped} == set(flows.filter(pl.col("src_port") == 6615)["line"])
