"""`flowtriage parse` end to end, through the real CLI entry point."""

from __future__ import annotations

import polars as pl

from engine.cli.entry import main
from engine.core.schema import FLOW_SCHEMA
from tests.conftest import FIXTURES

FORMATS = FIXTURES / "formats"


def test_parse_writes_canonical_columns_and_summaries(tmp_path, capsys):
    out = tmp_path / "flows.parquet"
    inputs = [
        FORMATS / "small-lzo.nfdump-1.7.1.extended.txt.gz",
        FORMATS / "small-lzo.nfdump-1.7.8.csv.txt.gz",
    ]
    assert main(["parse", *map(str, inputs), "-o", str(out)]) == 0
    flows = pl.read_parquet(out)
    assert flows.schema == pl.Schema(FLOW_SCHEMA)
    assert flows.height == 20
    err = capsys.readouterr().err
    assert f"{inputs[0]}: 10 flows, 5 skipped (0 not header/trailer/blank), format extended" in err
    assert "format csv-1.7.6" in err


def test_parse_csv_and_jsonl_outputs(tmp_path):
    src = str(FORMATS / "icmp-v4v6.nfdump-1.7.1.line.txt")
    for suffix in (".csv", ".jsonl"):
        out = tmp_path / f"f{suffix}"
        assert main(["parse", src, "-o", str(out)]) == 0
        assert out.read_text().count("\n") >= 6


def test_missing_input_is_a_clear_error_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "o.csv"
    src = str(FORMATS / "icmp-v4v6.nfdump-1.7.1.line.txt")
    assert main(["parse", src, str(tmp_path / "nope.txt"), "-o", str(out)]) == 2
    assert "nope.txt: no such file" in capsys.readouterr().err
    assert not out.exists()


def test_bad_lines_are_reported_with_file_and_line(tmp_path, capsys):
    dump = tmp_path / "d.txt"
    dump.write_text("garbage line\n\x1b[2Jmore\n")
    assert main(["parse", str(dump), "-o", str(tmp_path / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert f"{dump}:1: " in err and "\x1b" not in err
