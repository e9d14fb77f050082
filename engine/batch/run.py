"""A scored run: the dumps a batch command was given, scored one by one in rotation order,
with the minutes before each as history, the analysts' corrections applied when asked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.batch.plan import FileFlows, expand_paths, iter_scored
from engine.config.settings import Config
from engine.core.schema import SCORED_SCHEMA
from engine.detect.rules import RuleSet
from engine.feedback.suppress import Suppressor
from engine.models.registry import Warn, load_detector


@dataclass
class ScoredRun:
    """The dumps a batch command was given, scored one by one in rotation order."""

    paths: list[Path]
    model: Path
    meta: dict[str, Any]
    items: Iterator[tuple[FileFlows, pl.DataFrame]]
    threshold: float  # the detector's cut: flagged (and an attack verdict) at score >= it


def scored_run(
    inputs: list[str] | list[Path],
    config: Config,
    *,
    model: str | None = None,
    analyst_labels: bool,
    warn: Warn | None = None,
    wrap: Callable[[list[Path], Iterator[tuple[FileFlows, pl.DataFrame]]],
                   Iterator[tuple[FileFlows, pl.DataFrame]]] | None = None,
) -> ScoredRun:
    """Expand the inputs, load the model, and score each dump with the minutes before it as
    history. With `analyst_labels` the label store's corrections are applied as the live
    view applies them (`score`, `sources`); without, the model's own verdicts are kept
    (`eval` judges the model). `wrap` lets a caller watch the items go by (progress)."""
    paths = expand_paths(inputs, glob=config.watch.glob)
    detector, path, meta = load_detector(config, model, warn)
    suppressor = Suppressor.from_config(config, detector.threshold) if analyst_labels else None
    rules = RuleSet.from_config(config.rules)

    def items() -> Iterator[tuple[FileFlows, pl.DataFrame]]:
        for item, scored in iter_scored(
            paths, detector, timezone=config.ingest.timezone, rules=rules
        ):
            if suppressor is not None and len(suppressor):
                scored = suppressor.apply(scored, history=item.history).select(
                    list(SCORED_SCHEMA)
                )
            yield item, scored

    stream = items()
    return ScoredRun(
        paths, path, meta, wrap(paths, stream) if wrap else stream, float(detector.threshold)
    )
