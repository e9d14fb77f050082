"""The bundled corpora (data/samples/<corpus>/<shape>) as labelled segments, for training the
bundled model and for leave-one-source-out evaluation.

A segment is one corpus in one exporter shape. Segments are laid end to end in time before
they are trained on together (each shifted by a whole number of days), so that two segments
never share a feature window: the two shapes of one pcap have the same timestamps and
addresses, and would otherwise count every packet twice.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.feedback.labelsfile import join_labels  # noqa: E402
from engine.ingest import read_flows  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
SHAPES = ("nfpcapd", "routerlike")
LAB = ("lab-dev", "lab-mixed-dev")
# corpora the bundled model never trains on (each one's README says so): outside checks
EVAL_ONLY: tuple[str, ...] = ()
_SPACING = timedelta(days=3650)


@dataclass
class Segment:
    corpus: str
    shape: str
    flows: pl.DataFrame  # FLOW_SCHEMA + label
    files: list[Path]

    @property
    def name(self) -> str:
        return f"{self.corpus}/{self.shape}"


def corpora() -> list[str]:
    return sorted(p.name for p in SAMPLES.iterdir() if p.is_dir() and any((p / s).is_dir() for s in SHAPES))


def load_segment(corpus: str, shape: str, directory: Path | None = None) -> Segment | None:
    root = directory or SAMPLES / corpus
    files = sorted((root / shape).glob("*.txt.gz"))
    if not files:
        return None
    flows, _ = read_flows(files, timezone="UTC")
    labels = root / f"{shape}-labels.csv.gz"
    if labels.exists():
        flows = flows.with_columns(label=join_labels(flows, pl.read_csv(labels)))
    else:
        flows = flows.with_columns(label=pl.lit("normal"))
    return Segment(corpus, shape, flows, files)


def load_all(names: list[str] | None = None) -> list[Segment]:
    out = []
    for corpus in names or corpora():
        for shape in SHAPES:
            seg = load_segment(corpus, shape)
            if seg is not None:
                out.append(seg)
    return out


def end_to_end(frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Each frame shifted so that no two share a feature window (whole days: windows stay
    aligned), in the given order."""
    out = []
    for i, frame in enumerate(frames):
        if not frame.height:
            out.append(frame)
            continue
        start = frame["ts_first"].min()
        base = pl.datetime(2000, 1, 1).cast(frame.schema["ts_first"])
        shift = pl.lit(_SPACING * i) + (base - pl.lit(start).dt.truncate("1d"))
        out.append(frame.with_columns(ts_first=pl.col("ts_first") + shift, ts_last=pl.col("ts_last") + shift))
    return out


# Calibration: the raw score at which the shipped model flags a flow is chosen so that, on real
# benign traffic it was not trained on (out-of-fold scores from leaving each source out), at
# most TARGET of the port-53 flows of every real benign source with enough of them are flagged.
TARGET = 0.005
MIN_CALIBRATION_FLOWS = 200


def calibration_point(oof: pl.DataFrame, *, exclude: str | None = None, target: float = TARGET,
                      min_flows: int = MIN_CALIBRATION_FLOWS, threshold: float = 0.5
                      ) -> tuple[dict[str, float], dict[str, float]]:
    """({likeliest attack class: raw score that becomes the threshold}, each source's share
    flagged at those cuts).

    Starts every class at `threshold` and raises the cut of the class that flags most on the
    source furthest over `target` until every real benign source with at least `min_flows`
    normal port-53 flows (out-of-fold scores, in scope) has at most `target` of them flagged.
    `oof` has source, label, dns, score (raw: models without calibration), verdict, reasons."""
    normal = oof.filter(
        pl.col("source").str.starts_with("real-") & (pl.col("label") == "normal") & pl.col("dns")
        & ~pl.col("reasons").str.starts_with("out of scope")
        # a sampled export (1:3000 ISP transit) is its own problem: out of fold it is flagged
        # at any cut that still catches tunnels (see the README), so it does not set the cuts
        & ~pl.col("reasons").str.contains("sampled 1:")
    ).with_columns(top=pl.col("reasons").str.extract(r"clf:(\w+) "))
    if exclude is not None:
        normal = normal.filter(pl.col("source") != exclude)
    sizes = normal.group_by("source").len().filter(pl.col("len") >= min_flows)
    normal = normal.join(sizes, on="source")
    cuts: dict[str, float] = {}

    def flagged(frame: pl.DataFrame) -> pl.DataFrame:
        cut = pl.col("top").replace_strict(cuts, default=threshold, return_dtype=pl.Float64)
        return frame.filter((pl.col("score") >= cut) & (pl.col("verdict") != "anomaly"))

    for _ in range(1000):
        hits = flagged(normal)
        over = (hits.group_by("source").agg(pl.len().alias("n"), pl.col("len").first())
                .with_columns(excess=pl.col("n") - (pl.col("len") * target).floor())
                .filter(pl.col("excess") > 0).sort("excess", descending=True))
        if over.height == 0:
            break
        source, excess = over["source"][0], int(over["excess"][0])
        mine = hits.filter(pl.col("source") == source)
        worst = mine.group_by("top").len().sort("len", descending=True)["top"][0]
        scores = mine.filter(pl.col("top") == worst)["score"].sort()
        # raise the class's cut just past the `excess`-th lowest flagged score
        cuts[worst] = min(float(scores[min(excess, scores.len()) - 1]) + 1e-6, 0.999)
    hits = flagged(normal)
    shares = {str(s): float(hits.filter(pl.col("source") == s).height / n)
              for s, n in sizes.iter_rows()}
    return cuts, shares
