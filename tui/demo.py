"""The demo: bundled dumps replayed into a temporary directory, the live pipeline, the TUI."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from engine.config import Config
from engine.replay import Replayer, sample_dumps


def demo_config(config: Config, root: Path) -> Config:
    """The user's config with state, labels and retrained models kept in the demo's temporary
    directory (a first look must not touch the analyst's real store); dumps appear whole
    (atomic renames), so they need not settle long before they are read."""
    watch = dataclasses.replace(
        config.watch, state_db=str(root / "state.sqlite"), glob="nfcapd.*",
        settle_seconds=min(config.watch.settle_seconds, 0.5), poll_interval=min(config.watch.poll_interval, 0.5),
    )
    labels = dataclasses.replace(
        config.labels, db=str(root / "labels.sqlite"), model_dir=str(root / "models")
    )
    return dataclasses.replace(config, watch=watch, labels=labels)


def run_demo(config: Config, args: Any = None) -> int:
    from tui.app import check_model_path, check_tui_config, run_pipeline_app

    check_tui_config(config)
    check_model_path(config, args)
    corpus = getattr(args, "corpus", "lab-dev")
    shape = getattr(args, "shape", "nfpcapd")
    interval = float(getattr(args, "interval", 5.0))
    dumps = sample_dumps(corpus, shape)
    with tempfile.TemporaryDirectory(prefix="flowtriage-demo-") as tmp:
        root = Path(tmp)
        directory = root / "dumps"
        directory.mkdir()
        config = demo_config(config, root)
        replayer = Replayer(dumps, directory, interval=interval, staging=root / "staging")

        def build():
            from engine.commands.watch import build_feedback
            from engine.pipeline import Pipeline
            from engine.scorer import load_scorer

            scorer = load_scorer(config, getattr(args, "model", None))
            pipeline = Pipeline(directory, config, scorer, state_path=root / "state.sqlite", from_start=True,
                                feedback=build_feedback(config, create=True))
            replayer.start()  # the first rotation as soon as the pipeline can read it
            return pipeline, scorer

        try:
            return run_pipeline_app(
                build, config, subtitle=f"demo: {corpus}/{shape}, a rotation every {interval:g}s"
            )
        finally:
            replayer.stop()
