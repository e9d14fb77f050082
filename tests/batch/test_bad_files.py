"""One bad file never aborts a batch: truncated or corrupt compressed dumps keep the flows
before the damage and are reported by name; the other files are scored as if it were absent."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma

import pytest
import zstandard

from engine.cli.entry import main
from engine.ingest import read_dump
from tests.conftest import ROOT

EXTENDED = ROOT / "tests/fixtures/formats/isp-port53.nfdump-1.7.8.extended.txt.gz"
TEXT = gzip.decompress(EXTENDED.read_bytes())
FLOWS = sum(1 for x in TEXT.splitlines() if x[:1].isdigit())
CODECS = {
    "gz": lambda b: gzip.compress(b, mtime=0),
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("codec", list(CODECS))
def test_a_truncated_compressed_dump_keeps_the_flows_before_the_cut(tmp_path, codec):
    data = CODECS[codec](TEXT)
    path = tmp_path / f"cut.txt.{codec}"
    path.write_bytes(data[: len(data) // 2])
    result = read_dump(path, final=True)
    lines = result.flows["line"].to_list()
    whole = read_dump(EXTENDED, final=True).flows["line"].to_list()
    assert lines == whole[: len(lines)] and len(lines) < FLOWS  # a prefix, nothing invented
    if codec in ("gz", "xz"):  # bz2 and zstd decode whole blocks: half of one gives nothing
        assert len(lines) > FLOWS // 4
    assert result.problem and "truncated" in result.problem


@pytest.mark.parametrize("codec", list(CODECS))
def test_gzip_without_its_suffix_and_a_suffix_without_gzip(tmp_path, codec):
    plain_named = tmp_path / "nfcapd.202701010000"
    plain_named.write_bytes(CODECS[codec](TEXT))
    assert read_dump(plain_named, final=True).flows.height == FLOWS
    lying = tmp_path / f"plain.txt.{codec}"
    lying.write_bytes(TEXT)
    assert read_dump(lying, final=True).flows.height == FLOWS


def test_score_dir_with_bad_files_scores_the_others_and_names_the_bad_ones(tmp_path, capsys):
    d = tmp_path / "dumps"
    d.mkdir()
    (d / "a.txt").write_bytes(TEXT)
    for codec, compress in CODECS.items():
        data = compress(TEXT)
        (d / f"b-cut-{codec}.txt.{codec}").write_bytes(data[: len(data) // 2])
    (d / "c-corrupt.txt.gz").write_bytes(b"\x1f\x8b" + b"not gzip at all" * 100)
    (d / "d.txt").write_bytes(TEXT)
    out = tmp_path / "o.jsonl"
    assert main(["score", str(d), "-o", str(out), "--all", "-q"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    by_file: dict[str, int] = {}
    for r in rows:
        name = r["file"].rsplit("/", 1)[-1]
        by_file[name] = by_file.get(name, 0) + 1
    assert by_file["a.txt"] == FLOWS and by_file["d.txt"] == FLOWS
    err = capsys.readouterr().err
    for codec in CODECS:
        assert f"b-cut-{codec}.txt.{codec}" in err
    assert "c-corrupt.txt.gz" in err
    assert "Traceback" not in err


def test_a_gzip_bomb_is_stopped_naming_the_file_with_bounded_memory(tmp_path, capsys):
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [comp.compress(b"\0" * (1 << 20)) for _ in range(256)]  # 256 MiB of zeros
    bomb = tmp_path / "bomb.txt.gz"
    bomb.write_bytes(b"".join(parts) + comp.flush())
    out = tmp_path / "o.csv"
    assert main(["parse", str(bomb), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "bomb.txt.gz" in err and "bomb" in err


def test_a_fifo_is_refused_not_read_for_ever(tmp_path):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["parse", str(fifo), "-o", str(tmp_path / "o.csv")]) == 2


def test_millions_of_blank_lines_are_read_in_steps_and_counted_as_runs(tmp_path):
    """32 MB of newlines (the issue's 8 GB case): read a million lines at a time, each long run
    of blanks one skip entry saying how many lines it covers; the flows after keep their line
    numbers."""
    from engine.ingest.reader import BLANK_RUN, MAX_LINES, iter_dump

    lines = TEXT.split(b"\n")
    blanks = 3 * MAX_LINES + 17
    path = tmp_path / "blank.txt"
    path.write_bytes(lines[0] + b"\n" + b"\n" * blanks + b"\n".join(lines[1:]))
    flows, skipped = [], []
    for part in iter_dump(path, final=True):
        assert len(part.skipped) <= MAX_LINES // BLANK_RUN + 200
        flows.extend(part.flows["line"].to_list())
        skipped.extend(part.skipped)
    whole = read_dump(EXTENDED, final=True).flows["line"].to_list()
    assert flows == [n + blanks for n in whole]
    runs = [s for s in skipped if s.reason == "blank" and "blank lines" in s.text]
    assert sum(int(s.text.split()[0]) for s in runs) >= blanks - 2 * BLANK_RUN
