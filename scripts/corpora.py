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
                      min_flows: int = MIN_CALIBRATION_FLOWS) -> tuple[float, dict[str, float]]:
    """(raw score that becomes the threshold, each source's own (1 - target) quantile).

    `oof` has source, label, dns, score (raw: models without calibration) and reasons; only
    real corpora's normal, in-scope port-53 flows count."""
    normal = oof.filter(
        pl.col("source").str.starts_with("real-") & (pl.col("label") == "normal") & pl.col("dns")
        & ~pl.col("reasons").str.starts_with("out of scope")
    )
    if exclude is not None:
        normal = normal.filter(pl.col("source") != exclude)
    per_source = {}
    for (source,), part in normal.group_by("source"):
        if part.height >= min_flows:
            # the smallest cut that flags at most `target` of this source (ties stay below it)
            per_source[str(source)] = float(part["score"].quantile(1.0 - target, interpolation="higher"))
    point = max(per_source.values()) if per_source else 0.5
    return min(max(point + 1e-6, 0.5), 0.999), per_source
