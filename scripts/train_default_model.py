"""Build the bundled model (engine/models/default.skops) from the sample data in the repo.

    python scripts/train_default_model.py [--output PATH] [--oof OOF.parquet] [--target 0.005]

Trains on every bundled corpus (data/samples: the lab corpora and the real ones, see each
README) in both exporter shapes where a corpus has them (nfpcapd: one flow per packet;
routerlike: softflowd or Zeek, router-like aggregates), because a model trained on one shape
fails on the other and a model trained on the lab alone fails on real networks. Labels come
from the corpora's labels files plus the default rules; analyst labels are ignored so the
result depends on the repository only. Only in-scope flows (the default [scope]) are learned
from; the rest are window context.

Then the calibration point: the raw score that becomes the threshold, chosen so that at most
`--target` of the port-53 flows of each real benign corpus with enough of them are flagged
*when that corpus was not trained on* (out-of-fold scores: each such corpus left out in turn,
or read from `--oof`, the file `scripts/realeval.py --oof` writes). Re-run after changing
features, the Detector or the corpora.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from corpora import (  # noqa: E402
    EVAL_ONLY,
    MIN_CALIBRATION_FLOWS,
    SHAPES,
    TARGET,
    calibration_point,
    end_to_end,
    load_all,
)

from engine.cli.entry import main  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
DEFAULTS = ROOT / "engine" / "config" / "defaults.toml"


def build_argv(output: Path) -> list[str]:
    dumps, labels = [], []
    for corpus in sorted(p for p in SAMPLES.iterdir() if p.is_dir() and p.name not in EVAL_ONLY):
        for shape in SHAPES:
            if (corpus / shape).is_dir():
                dumps.append(str(corpus / shape))
                labels += ["--labels", str(corpus / f"{shape}-labels.csv.gz")]
    return ["train", *dumps, *labels, "-o", str(output), "--no-label-db", "--config", str(DEFAULTS)]


def out_of_fold() -> pl.DataFrame:
    """Raw scores of each real benign corpus with enough port-53 flows, from a Detector trained
    (shipped parameters and scope) on every other corpus."""
    from engine.config.settings import load_config
    from engine.detect.detector import Detector

    config = load_config(DEFAULTS)
    segments = [s for s in load_all() if s.corpus not in EVAL_ONLY]
    dns = (pl.col("src_port") == 53) | (pl.col("dst_port") == 53)
    held = sorted({s.corpus for s in segments if s.corpus.startswith("real-")
                   and s.flows.filter(dns & (pl.col("label") == "normal")).height >= MIN_CALIBRATION_FLOWS})
    parts = []
    for name in held:
        train = pl.concat(end_to_end([s.flows for s in segments if s.corpus != name]), how="vertical_relaxed")
        detector = Detector.from_config(config.model).use_config(config)
        detector.fit(train.drop("label"), train["label"])
        for seg in (s for s in segments if s.corpus == name):
            scored = detector.score(seg.flows.drop("label"))
            parts.append(scored.select("score", "reasons", dns=dns, label=seg.flows["label"],
                                       source=pl.lit(name), shape=pl.lit(seg.shape)))
            print(f"out of fold: {name}/{seg.shape}: {seg.flows.height} flows", file=sys.stderr)
    return pl.concat(parts)


def calibrate(model: Path, oof: pl.DataFrame, target: float) -> None:
    from engine.models.store import load_model, read_metadata, save_model

    point, per_source = calibration_point(oof, target=target)
    point = {k: round(v, 6) for k, v in point.items()}
    detector = load_model(model)
    detector.calibration = point
    meta = read_metadata(model)
    for key in ("sha256", "libraries", "created", "format"):
        meta.pop(key, None)
    meta["params"] = {k: v for k, v in vars(detector).items() if not k.endswith("_")}
    meta["calibration"] = {
        "raw_score_at_threshold": point,
        "target_share_flagged": target,
        "per_source_share_flagged": per_source,
        "how": "per likeliest attack class, the lowest raw-score cuts at which every real benign "
               "corpus's normal port-53 flows (out-of-fold: each corpus left out of training in "
               "turn) are flagged at most at the target share",
    }
    save_model(detector, model, metadata=meta)
    print(f"calibration {json.dumps(point)}: out-of-fold share flagged {json.dumps(per_source)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "engine" / "models" / "default.skops")
    parser.add_argument("--oof", type=Path, help="out-of-fold raw scores (scripts/realeval.py --oof)")
    parser.add_argument("--target", type=float, default=TARGET)
    parser.add_argument("--skip-calibration", action="store_true", help="train only")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="only (re)calibrate the model at --output (with --oof)")
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if not args.calibrate_only:
        status = main(build_argv(args.output))
        if status or args.skip_calibration:
            raise SystemExit(status)
    calibrate(args.output, pl.read_parquet(args.oof) if args.oof else out_of_fold(), args.target)
