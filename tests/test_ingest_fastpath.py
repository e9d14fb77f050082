"""The fixed-width fast path must give exactly what the exact regex path gives."""

from __future__ import annotations

import gzip

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.ingest import parse_bytes
from engine.ingest.lines import split_lines
from engine.ingest.text import _parse_regex, parse_text
from tests.conftest import FIXTURES

TEXT_FIXTURES = sorted(
    p
    for p in (FIXTURES / "formats").glob("*")
    if any(f".{k}." in p.name or f".{k}-N." in p.name for k in ("line", "long", "extended"))
) + [FIXTURES / "real" / f"nfcapd.sample.nfdump-1.7.1.{k}.txt.gz" for k in ("extended", "long")]


def _lines(path) -> pl.DataFrame:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    texts = split_lines(data)
    return pl.DataFrame({"n": pl.int_range(1, texts.len() + 1, eager=True), "text": texts})


@pytest.mark.parametrize("path", TEXT_FIXTURES, ids=lambda p: p.name)
def test_fast_path_equals_regex_path(path):
    lines = _lines(path).slice(1)  # without the header
    fast, fast_rest = parse_text(lines, file="f")
    exact, exact_rest = _parse_regex(lines, file="f")
    assert_frame_equal(fast, exact)
    assert fast_rest["n"].sort().to_list() == exact_rest["n"].sort().to_list()


def test_values_wider_than_the_sample_fall_back_and_stay_right():
    row = (
        "2019-08-12 18:50:48.516     00:00:00.000 UDP      45.116.232.23:6615  ->  "
        "134.209.131.107:53    ........   0     3000   744000        0        0    248     1"
    )
    # the same line with a 3-digit tos and 8-digit packets, still at nfdump's widths
    wide = row.replace("........   0     3000", "........ 128 12345678")
    assert len(wide) == len(row)
    text = "\n".join([row] * 100 + [wide] + [row] * 10) + "\n"
    flows = parse_bytes(text.encode(), file="w", final=True).flows
    odd = flows.filter(pl.col("line") == 101).row(0, named=True)
    assert (odd["tos"], odd["packets"], odd["tcp_flags"]) == (128, 12345678, "........")
    assert flows.height == 111 and flows["tos"].sum() == 128
