"""A flow line whose values are out of the canonical contract (a date before 1970, a port
outside 0..65535, a negative or overflowing count) is a counted skip with its file, line and
reason: never a flow that later breaks scoring, never an exception that stops the file."""

from __future__ import annotations

import gzip

import pytest

from engine.ingest import read_dump
from tests.conftest import ROOT

FORMATS = ROOT / "tests/fixtures/formats"
EXTENDED = FORMATS / "isp-port53.nfdump-1.7.8.extended.txt.gz"
CSV_FAST = FORMATS / "isp-port53.nfdump-1.7.8.csv.txt.gz"

FIRST_EXT = "2019-08-12 18:50:48.516     00:00:00.000 UDP      45.116.232.23:6615  ->  134.209.131.107:53    ........   48     3000   744000        0        0    248     1"
FIRST_CSV = "2019-08-12 18:50:48.516,0.000,17,45.116.232.23,6615,134.209.131.107,53,3000,744000,1"

POISON_EXT = {
    "before 1970": FIRST_EXT.replace("2019-08-12", "1969-12-31"),
    "scaled overflow": FIRST_EXT.replace("  744000", " 9999999.9 T"),
    "port above 65535": FIRST_EXT.replace(":6615 ", ":99999"),
    "year 9999": FIRST_EXT.replace("2019-08-12", "9999-12-31"),
}
POISON_CSV = {
    "before 1970": FIRST_CSV.replace("2019-08-12", "1969-12-31"),
    "negative port": FIRST_CSV.replace(",6615,", ",-6615,"),
    "port above 65535": FIRST_CSV.replace(",6615,", ",70000,"),
    "negative bytes": FIRST_CSV.replace(",744000,", ",-744000,"),
    "int64 overflow": FIRST_CSV.replace(",744000,", ",99999999999999999999,"),
    "negative packets": FIRST_CSV.replace(",3000,744000", ",-3000,744000"),
    "flows overflow": FIRST_CSV[:-1] + "9999999999",
}


def _with_poison(tmp_path, source, first, poison) -> tuple:
    lines = gzip.decompress(source.read_bytes()).decode().splitlines(keepends=True)
    assert lines[1].rstrip("\n") == first
    path = tmp_path / "poisoned.txt"
    path.write_text(lines[0] + poison + "\n" + "".join(lines[2:]))
    return path, len(lines)


@pytest.mark.parametrize(
    ("source", "first", "poison"),
    [(EXTENDED, FIRST_EXT, p) for p in POISON_EXT.values()]
    + [(CSV_FAST, FIRST_CSV, p) for p in POISON_CSV.values()],
    ids=[f"extended-{k}" for k in POISON_EXT] + [f"csv-{k}" for k in POISON_CSV],
)
def test_an_out_of_range_value_is_a_counted_skip_not_a_flow(tmp_path, source, first, poison):
    path, _ = _with_poison(tmp_path, source, first, poison)
    whole = read_dump(source, final=True)
    result = read_dump(path, final=True)
    assert result.flows.height == whole.flows.height - 1
    assert 2 not in result.flows["line"].to_list()
    bad = result.bad_lines
    assert [(b.file, b.line) for b in bad] == [(str(path), 2)]
    assert bad[0].reason
    # every flow left is inside the contract
    f = result.flows
    assert f["src_port"].is_between(0, 65535).all() and f["dst_port"].is_between(0, 65535).all()
    assert (f["packets"] >= 0).all() and (f["bytes"] >= 0).all() and (f["flows"] >= 0).all()
    assert f["ts_first"].dt.year().is_between(1970, 2200).all()
