"""Train the bundled default model from the labelled sample data in the repo.

Both lab corpora (data/samples/lab-dev, data/samples/lab-mixed-dev), both exporter shapes
(nfpcapd one-flow-per-packet, routerlike aggregated), every rotated file, truth labels from
the labels files. Each dump directory is read on its own, so windows never mix shapes or
corpora. The model is written with engine.modelstore.save_model (skops + sha256 sidecar).

    python scripts/train_default_model.py [-o engine/models/default.skops]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.detect import Detector, _join_keyed  # noqa: E402
from engine.ingest import read_flows  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
CORPORA = ("lab-dev", "lab-mixed-dev")
SHAPES = ("nfpcapd", "routerlike")
DEFAULT_OUT = ROOT / "engine" / "models" / "default.skops"


def training_data() -> tuple[pl.DataFrame, pl.Series, list[str]]:
    flows, labels, sources = [], [], []
    for corpus in CORPORA:
        for shape in SHAPES:
            truth = pl.read_csv(SAMPLES / corpus / f"{shape}-labels.csv.gz")
            paths = sorted((SAMPLES / corpus / shape).glob("nfcapd.*.txt.gz"))
            part, _ = read_flows(paths, timezone="UTC")
            flows.append(part)
            labels.append(_join_keyed(part, truth))
            sources += [str(p.relative_to(ROOT)) for p in paths]
    return pl.concat(flows), pl.concat(labels), sources


def train_default(**params) -> tuple[Detector, dict]:
    """The default Detector trained on every bundled labelled flow, and its provenance."""
    flows, labels, sources = training_data()
    # The four sets do not overlap in time (each lab run has its own date), so their windows
    # stay apart although they are fitted together.
    detector = Detector(**params).fit(flows, labels)
    metadata = {
        "trained_by": "scripts/train_default_model.py",
        "training_files": sources,
        "params": {k: getattr(detector, k) for k in detector.__init__.__code__.co_varnames[1:]
                   if hasattr(detector, k)},
    }
    return detector, metadata


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    detector, metadata = train_default()
    try:
        from engine.modelstore import save_model
    except ImportError:
        print("engine.modelstore is not available yet: model trained but not saved", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_model(detector, args.output, metadata)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB), version "
          f"{detector.version_}, labels {detector.label_counts_}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
