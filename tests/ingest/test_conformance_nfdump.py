"""Conformance: our parser against the real nfdump 1.7.1, in every output format it prints.

Each nfcapd file is printed by the real nfdump in every format flowtriage claims to read
(line, long, extended, their full-IPv6 `6` variants, biline, bilong, each with and without -N;
csv; json), parsed with engine.ingest.read_dump, and compared flow by flow with what
`nfdump -o json` says about the same file (tests/nfdump_harness.py: the oracle and its
conventions). The nfcapd files come from the real nfpcapd (a capture written byte by byte in
the test; the real iodine capture), from a real nfcapd fed NetFlow v5/v9 datagrams (counters in
M, G and T, every IP protocol number), and from real files of the field (tests/fixtures).
A failure names the source, the nfcapd file, the format and the flow.
"""

from __future__ import annotations

import polars as pl
import pytest

from engine.core.schema import FLOW_SCHEMA
from engine.ingest import BENIGN_REASONS, Cursor, read_dump
from tests import nfdump_harness as nh

pytestmark = [
    pytest.mark.nfdump,
    pytest.mark.skipif(None in (nh.NFDUMP, nh.NFPCAPD, nh.NFCAPD), reason=nh.MISSING_REASON),
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return nh.NfcapdSources(tmp_path_factory.mktemp("conformance"))


def _read_whole(path):
    return read_dump(path, final=True, timezone="UTC")


# Parser bugs this test finds, as {(source, format id): reason}, marked xfail(strict=True) so
# that a fix turns them into failures that ask for the marker to go. COUNT_BUGS are those that
# also break the Summary totals (a flow skipped as malformed; a misnamed protocol does not).
COUNT_BUGS: dict[tuple[str, str], str] = {}
KNOWN_BUGS: dict[tuple[str, str], str] = {**COUNT_BUGS}


def _cases(formats, bugs=KNOWN_BUGS):
    return [
        pytest.param(
            source,
            fmt,
            id=f"{source}-{fmt.id}",
            marks=[pytest.mark.xfail(strict=True, reason=bugs[source, fmt.id])]
            if (source, fmt.id) in bugs
            else [],
        )
        for source in nh.SOURCES
        for fmt in formats
    ]


@pytest.mark.parametrize(("source", "fmt"), _cases(nh.FORMATS))
def test_parse_equals_nfdump_json(sources, source, fmt):
    problems = []
    for nfcapd_file in sources.files(source):
        dump = sources.dump(nfcapd_file, fmt)
        result = _read_whole(dump)
        got, want = result.flows, sources.oracle(nfcapd_file)
        where = f"{source} {nfcapd_file.name} -o {' '.join(fmt.args[1:])}"
        assert dict(got.schema) == FLOW_SCHEMA, where
        found = nh.compare_flows(got, want, fmt)
        found += nh.lines_name_their_flows(got, dump.read_bytes(), fmt)
        bad = [s for s in result.skipped if s.reason not in BENIGN_REASONS]
        found += [f"line {s.line} skipped ({s.reason}): {s.text!r}" for s in bad[:8]]
        if fmt.kind != "json":
            # every line is a flow or an accounted-for skipped line, none silently dropped
            n_lines = dump.read_bytes().count(b"\n")
            accounted = got.height + len(result.skipped)
            if accounted != n_lines:
                found.append(
                    f"{n_lines} lines, but {got.height} flows + {len(result.skipped)} skipped"
                )
        problems += [f"{where}: {p}" for p in found]
    assert not problems, "\n".join(problems)


TOTALLED = [f for f in nh.FORMATS if f.kind != "json"]  # json prints no Summary


@pytest.mark.parametrize(("source", "fmt"), _cases(TOTALLED, COUNT_BUGS))
def test_totals_equal_summary_trailer(sources, source, fmt):
    for nfcapd_file in sources.files(source):
        dump = sources.dump(nfcapd_file, fmt)
        got = _read_whole(dump).flows
        summary = nh.summary_of(dump.read_bytes())
        assert summary is not None, f"{dump.name}: no Summary trailer"
        where = f"{source} {nfcapd_file.name} -o {' '.join(fmt.args[1:])}"
        assert got.height == summary.flows, where
        # per-flow scaling loses up to half a printed digit per flow, the Summary's own as much
        want = sources.oracle(nfcapd_file)
        ptol = nh.scale_tolerance(want["packets"], fmt).sum() + summary.packets_tol
        btol = nh.scale_tolerance(want["bytes"], fmt).sum() + summary.bytes_tol
        assert abs(got["packets"].sum() - summary.packets) <= ptol, where
        assert abs(got["bytes"].sum() - summary.bytes) <= btol, where


def _incremental(path, data: bytes, cuts: list[int]) -> tuple[pl.DataFrame, list]:
    """Write `data` to `path` in pieces ending at `cuts`, reading after each as a tailer would."""
    frames, skipped = [], []
    cursor = Cursor()
    path.write_bytes(b"")
    for end in [*cuts, len(data)]:
        with open(path, "ab") as fh:
            fh.write(data[path.stat().st_size : end])
        result = read_dump(path, cursor, final=end == len(data), timezone="UTC")
        assert result.cursor.offset <= end, (end, result.cursor)
        if end < len(data) and data[end - 1 : end] != b"\n":
            # a line cut mid-write is held back: the cursor never passes its start
            assert result.cursor.offset <= data.rfind(b"\n", 0, end) + 1, (end, result.cursor)
        frames.append(result.flows)
        skipped += result.skipped
        cursor = result.cursor
    return pl.concat(frames), skipped


INCREMENTAL = [
    f for f in nh.FORMATS if f.id in ("line", "long-N", "extended", "extended6", "csv", "json")
]


@pytest.mark.parametrize("fmt", INCREMENTAL, ids=lambda f: f.id)
@pytest.mark.parametrize("source", ["chrispassas-sample.nfcapd", "synthetic"])
def test_dump_read_while_written_gives_the_whole_file(sources, tmp_path, source, fmt):
    nfcapd_file = max(sources.files(source), key=lambda p: p.stat().st_size)
    whole_path = sources.dump(nfcapd_file, fmt)
    data = whole_path.read_bytes()
    whole = _read_whole(whole_path)
    # cuts mid-line, right after a newline, inside the header and inside the trailer
    newline = data.find(b"\n", len(data) // 3)
    cuts = sorted(
        {
            7,
            data.find(b"\n") + 1,
            len(data) // 7,
            len(data) // 3 + 11,
            newline + 1,
            newline + 2,
            data.rfind(b"Summary") + 4 if b"Summary" in data else len(data) - 9,
            len(data) - 1,
        }
    )
    tail_path = tmp_path / whole_path.name
    got, skipped = _incremental(tail_path, data, [c for c in cuts if 0 < c < len(data)])
    want = whole.flows.with_columns(file=pl.lit(str(tail_path)))
    assert got.height == want.height
    assert got.equals(want), "flows read incrementally differ from the whole-file read"
    assert sorted((s.line, s.reason) for s in skipped) == sorted(
        (s.line, s.reason) for s in whole.skipped
    )


def _compress(codec: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    import zstandard

    return {
        "gz": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "zst": zstandard.ZstdCompressor().compress,
    }[codec](data)


# each codec with a different format (the full cross product adds time, not coverage)
ROTATED = [
    (next(f for f in nh.FORMATS if f.id == fid), codec)
    for fid, codec in [
        ("line", "gz"),
        ("extended-N", "bz2"),
        ("long6", "xz"),
        ("csv", "zst"),
        ("json", "gz"),
        ("extended", "xz"),
    ]
]


@pytest.mark.parametrize(("fmt", "codec"), ROTATED, ids=lambda v: getattr(v, "id", v))
def test_rotated_compressed_dump_reads_like_the_plain_one(sources, tmp_path, fmt, codec):
    nfcapd_file = sources.files("chrispassas-sample.nfcapd")[0]
    plain = sources.dump(nfcapd_file, fmt)
    packed = tmp_path / f"{plain.name}.{codec}"
    packed.write_bytes(_compress(codec, plain.read_bytes()))
    result = _read_whole(packed)
    assert result.cursor.offset == len(plain.read_bytes())  # offsets count decompressed text
    assert not nh.compare_flows(result.flows, sources.oracle(nfcapd_file), fmt)
    want = _read_whole(plain).flows.with_columns(file=pl.lit(str(packed)))
    assert result.flows.equals(want)
