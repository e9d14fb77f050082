"""Build the bundled model (engine/models/default.skops) from the sample data in the repo.

    python scripts/train_default_model.py [--output PATH]

Trains on both bundled corpora in both shapes (nfpcapd: one flow per packet; routerlike:
softflowd aggregates), because a model trained on one shape fails on the other. Labels come from
the corpora's labels files plus the default rules; analyst labels are ignored so the result
depends on the repository only. Re-run after changing features or the Detector.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.cli.entry import main  # noqa: E402

SAMPLES = ROOT / "data" / "samples"


def build_argv(output: Path) -> list[str]:
    dumps, labels = [], []
    for corpus in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        for shape in ("nfpcapd", "routerlike"):
            if (corpus / shape).is_dir():
                dumps.append(str(corpus / shape))
                labels += ["--labels", str(corpus / f"{shape}-labels.csv.gz")]
    return [
        "train", *dumps, *labels, "-o", str(output), "--no-label-db",
        "--config", str(ROOT / "engine" / "config" / "defaults.toml"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "engine" / "models" / "default.skops")
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    raise SystemExit(main(build_argv(args.output)))
