"""read_flows: a directory mixing versions and formats, read whole, in the order given."""

from __future__ import annotations

from engine.ingest import read_flows
from tests.conftest import FIXTURES


def test_mixed_directory_in_given_order():
    paths = [
        FIXTURES / "formats" / "small-lzo.nfdump-1.6.25.line.txt.gz",
        FIXTURES / "formats" / "small-lzo.nfdump-1.7.8.ndjson.txt.gz",
        FIXTURES / "formats" / "icmp-v4v6.nfdump-1.7.1.csv.txt",
        FIXTURES / "formats" / "small-lzo.nfdump-1.7.1.json.txt.gz",
    ]
    flows, results = read_flows(paths)
    assert [r.format for r in results] == ["line", "ndjson", "csv", "json"]
    assert flows.height == 10 + 10 + 6 + 10
    assert flows["file"].unique(maintain_order=True).to_list() == [str(p) for p in paths]
    assert all(not r.bad_lines for r in results)
