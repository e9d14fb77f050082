"""An archive for the backfill tests, built from the bundled samples (data/samples/lab-dev):

- `rtr/`: the five routerlike rotations (router-shaped flows), shifted in time so that
  midnight falls inside nfcapd.202701110141 (a file spanning two day partitions, windows
  spanning midnight and rotations); plain, gzip and zstd files mixed;
- `pcap/`: two consecutive nfpcapd rotations (one flow per packet), one plain, one gzip.
About 47k flows: seconds per engine.
"""

from __future__ import annotations

import gzip
import re
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import zstandard

from engine.batch.backfill import list_local, read_output
from engine.batch.plan import iter_scored
from engine.config.settings import Config
from engine.detect.rules import RuleSet
from engine.models.store import load_model

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "lab-dev"
_STAMP = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}")
# 01:41:30 on 2027-01-11 becomes midnight of 2027-01-12.
SHIFT = datetime(2027, 1, 12) - datetime(2027, 1, 11, 1, 41, 30)


def _shift(text: bytes, delta: timedelta) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        when = datetime.strptime(match[0].decode(), "%Y-%m-%d %H:%M:%S.%f") + delta
        return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3].encode()

    return _STAMP.sub(one, text)


def build_archive(root: Path) -> Path:
    rtr, pcap = root / "rtr", root / "pcap"
    rtr.mkdir(parents=True)
    pcap.mkdir(parents=True)
    codecs = ["gz", "plain", "zst", "gz", "plain"]
    for codec, src in zip(codecs, sorted((SAMPLES / "routerlike").glob("*.gz")), strict=True):
        text = _shift(gzip.decompress(src.read_bytes()), SHIFT)
        _write(rtr / src.name.removesuffix(".gz"), text, codec)
    for codec, minute in (("plain", "0838"), ("gz", "0839")):
        src = SAMPLES / "nfpcapd" / f"nfcapd.20261122{minute}.txt.gz"
        _write(pcap / src.name.removesuffix(".gz"), gzip.decompress(src.read_bytes()), codec)
    return root


def _write(path: Path, text: bytes, codec: str) -> None:
    if codec == "gz":
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(text))
    elif codec == "zst":
        path.with_name(path.name + ".zst").write_bytes(zstandard.ZstdCompressor().compress(text))
    else:
        path.write_bytes(text)


def expected(inputs: list[Path | str]) -> pl.DataFrame:
    """What `score --all` gives for each exporter directory (engine.batch.plan.iter_scored,
    one process, history carried), in read_output's shape and order."""
    config = Config()
    detector, rules = load_model(None), RuleSet.from_config(config.rules)
    by_exporter: dict[str, list[Path]] = {}
    for f in list_local(inputs):
        by_exporter.setdefault(f.exporter, []).append(Path(f.path))
    frames = []
    for exporter, paths in by_exporter.items():
        for _item, scored in iter_scored(paths, detector, rules=rules):
            frames.append(scored.with_columns(
                exporter=pl.lit(exporter), day=pl.col("ts_first").dt.strftime("%Y-%m-%d")
            ))
    return pl.concat(frames).sort(["exporter", "file", "line"], maintain_order=True)


def assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Every column equal, verdicts and reasons included; scores to 1e-12 (the forest's
    threaded sums differ by an ulp between two runs of one process too)."""
    assert got.height == want.height
    rest = [c for c in want.columns if c != "score"]
    for column in rest:
        same = got[column].equals(want[column])
        assert same, f"column {column} differs"
    assert (got["score"] - want["score"]).abs().max() <= 1e-12  # type: ignore[operator]


def output(out: Path) -> pl.DataFrame:
    return read_output(out)
