"""Property-based: mutated real dump lines, every format, never crash the reader or the scorer.

Each example takes a slice of a real nfdump dump (every version and format in
tests/fixtures/formats), mutates some of its lines (a field replaced by a hostile token, bytes
flipped, lines cut, dropped, duplicated or inserted) and checks:
- reading it raises nothing, and every line is either a flow or a counted skip with its file
  and line (line-per-record formats: exactly one of the two for every line);
- every flow kept is inside the canonical contract (ports, counts, times);
- reading it in random pieces (the watcher's way) gives what reading it whole gives;
- the bundled model scores the flows without raising, scores in [0, 1].

CI runs a short budget; FLOWTRIAGE_FUZZ_LONG=1 runs the `fuzz_long` variants (thousands of
examples). Defects this found and that were fixed are listed in issue 18's note.
"""

from __future__ import annotations

import gzip

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from engine.ingest import Cursor
from engine.ingest.reader import parse_step
from tests.conftest import FIXTURES

SOURCES: dict[str, list[bytes]] = {}
for _path in sorted((FIXTURES / "formats").glob("*.txt*")):
    _data = _path.read_bytes()
    if _path.suffix == ".gz":
        _data = gzip.decompress(_data)
    SOURCES[_path.name] = _data.split(b"\n")[:400]  # enough of each for the slices drawn
NAMES = sorted(SOURCES)
MULTI_LINE = ("json.txt",)  # a record spans lines: its inner lines are neither flow nor skip

TOKENS = [
    b"-1", b"-6615", b"99999", b"65536", b"9999999.9 T", b"9999999 T", b"1969-12-31",
    b"1970-01-01 00:00:00.000", b"2299-12-31 23:59:59.999", b"9999-12-31", b"nan", b"inf",
    b"-inf", b"", b"0", b"18446744073709551616", b"-9223372036854775809", b"1e308", b"\x1b]0;x\x07",
    b"\x1b[2J", b"{", b"}", b"[", b"]", b'"', b",", b":", b"..", "\u202e".encode(), b"\xff\xfe",
    b"-2147483648d", b"00:00:00.000", b"99:99:99.999", b"5d 09:08:01.812", b"4.5 M", b"1.4M",
    b"ICMP", b"255.255", b"2001:db8..2.53", b"::ffff:192.0.2.1", b"\t", b"\r", b"\0",
]
SHORT = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = settings(max_examples=3000, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
fuzz_long = pytest.mark.fuzz_long  # skipped unless FLOWTRIAGE_FUZZ_LONG=1 (tests/conftest.py)


def _mutate(draw, line: bytes) -> list[bytes]:
    op = draw(st.sampled_from(["keep"] * 4 + ["token", "flip", "cut", "dup", "drop", "insert"]))
    if op == "keep" or not line:
        return [line]
    if op == "token":
        fields = line.split(b" ") if b"," not in line else line.split(b",")
        sep = b" " if b"," not in line else b","
        i = draw(st.integers(0, len(fields) - 1))
        fields[i] = draw(st.sampled_from(TOKENS))
        return [sep.join(fields)]
    if op == "flip":
        i = draw(st.integers(0, len(line) - 1))
        return [line[:i] + bytes([draw(st.integers(0, 255))]) + line[i + 1 :]]
    if op == "cut":
        return [line[: draw(st.integers(0, len(line)))]]
    if op == "dup":
        return [line, line]
    if op == "drop":
        return []
    return [line, draw(st.sampled_from(TOKENS)) + draw(st.binary(max_size=40))]


@st.composite
def mutated_dump(draw, names=tuple(NAMES)):
    name = draw(st.sampled_from(names))
    lines = SOURCES[name]
    start = draw(st.integers(1, max(1, len(lines) - 2)))
    body = lines[start : start + draw(st.integers(1, 25))]
    keep_header = draw(st.booleans()) or start == 1
    chosen = ([lines[0]] if keep_header else []) + body
    out: list[bytes] = []
    for line in chosen:
        out.extend(_mutate(draw, line))
    data = b"\n".join(out)
    if draw(st.booleans()):
        data += b"\n"
    return name, data


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def _check_read(name: str, data: bytes):
    result = parse_step(data, file="fuzzed.txt", cursor=Cursor(), final=True, timezone="UTC")
    flows = result.flows
    flow_lines = flows["line"].to_list()
    skip_lines = [s.line for s in result.skipped]
    n = _line_count(data)
    assert all(s.file == "fuzzed.txt" and s.reason for s in result.skipped)
    assert len(set(flow_lines)) == len(flow_lines)
    assert not set(flow_lines) & set(skip_lines)
    assert set(flow_lines) | set(skip_lines) <= set(range(1, n + 1))
    if not name.endswith(MULTI_LINE):
        assert set(flow_lines) | set(skip_lines) == set(range(1, n + 1)), "a line went uncounted"
    if flows.height:
        assert flows["src_port"].is_between(0, 65535).all()
        assert flows["dst_port"].is_between(0, 65535).all()
        assert ((flows["packets"] >= 0) & (flows["bytes"] >= 0) & (flows["flows"] >= 0)).all()
        assert flows["ts_first"].dt.year().is_between(1970, 2200).all()
        assert (flows["ts_last"] >= flows["ts_first"]).all()
    return result


def _check_pieces(data: bytes, cuts: list[int], whole) -> None:
    """Read in pieces as the tailer does (partial last lines held back): same as whole."""
    cursor, frames, skipped = Cursor(), [], []
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut < cursor.offset:
            continue
        final = cut == len(data)
        part = parse_step(data[cursor.offset : cut], file="fuzzed.txt", cursor=cursor,
                          final=final, timezone="UTC")
        cursor = part.cursor
        frames.append(part.flows)
        skipped.extend(part.skipped)
    flows = pl.concat(frames)
    assert_frame_equal(flows, whole.flows)
    # the same lines skipped (a piece that holds only a damaged header cannot know the layout
    # the whole file has, so the reason may differ)
    assert [s.line for s in skipped] == [s.line for s in whole.skipped]


@pytest.fixture(scope="module")
def detector():
    from engine.models.registry import BUNDLED_MODEL
    from engine.models.store import load_model

    return load_model(BUNDLED_MODEL)


def _check_scores(detector, flows: pl.DataFrame) -> None:
    if flows.height == 0:
        return
    scored = detector.score(flows)
    assert scored.height == flows.height
    assert scored["score"].is_between(0.0, 1.0).all()


@SHORT
@given(case=mutated_dump(), cuts=st.lists(st.integers(0, 4000), max_size=6))
def test_mutated_dumps_read_without_crash_and_count_every_line(case, cuts):
    name, data = case
    whole = _check_read(name, data)
    if not name.endswith(MULTI_LINE):
        _check_pieces(data, [c for c in cuts if c <= len(data)], whole)


@SHORT
@given(case=mutated_dump())
def test_mutated_dumps_score_without_crash(detector, case):
    name, data = case
    _check_scores(detector, _check_read(name, data).flows)


@fuzz_long
@LONG
@given(case=mutated_dump(), cuts=st.lists(st.integers(0, 4000), max_size=6))
def test_long_mutated_dumps_read_without_crash(case, cuts):
    name, data = case
    whole = _check_read(name, data)
    if not name.endswith(MULTI_LINE):
        _check_pieces(data, [c for c in cuts if c <= len(data)], whole)


@fuzz_long
@LONG
@given(case=mutated_dump())
def test_long_mutated_dumps_score_without_crash(detector, case):
    name, data = case
    _check_scores(detector, _check_read(name, data).flows)
