"""write_frame: format by extension, atomic replacement, clear refusal of unknown formats."""

import json

import polars as pl
import pytest

from engine.core.errors import UserError
from engine.core.output import write_frame

FRAME = pl.DataFrame(
    {"src_addr": ["10.0.0.1", "2001:db8::1"], "score": [0.25, 0.9], "activity": [[1, 2], [0, 3]]}
)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl", ".JSONL"])
def test_each_format_reads_back(tmp_path, suffix):
    path = write_frame(FRAME, tmp_path / f"out{suffix}")
    if suffix == ".csv":
        back = pl.read_csv(path)
        assert back["src_addr"].to_list() == ["10.0.0.1", "2001:db8::1"]
        assert back["activity"].to_list() == ["1 2", "0 3"]  # CSV has no lists
    elif suffix == ".parquet":
        assert pl.read_parquet(path).equals(FRAME)
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert rows[1] == {"src_addr": "2001:db8::1", "score": 0.9, "activity": [0, 3]}


def test_unknown_extension_is_a_user_error_and_writes_nothing(tmp_path):
    with pytest.raises(UserError, match=r"unknown output format '\.xlsx'.*\.csv, \.parquet, \.jsonl"):
        write_frame(FRAME, tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        write_frame(FRAME, tmp_path / "no" / "out.csv")


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("previous complete result\n")
    bad = pl.DataFrame({"obj": pl.Series([object()], dtype=pl.Object)})
    with pytest.raises(Exception):  # noqa: B017 - polars' own error type for Object columns
        write_frame(bad, path)
    assert path.read_text() == "previous complete result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
