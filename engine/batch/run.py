"""A scored run: the dumps a batch command was given, scored one by one in rotation order,
with the minutes before each as history, the analysts' corrections applied when asked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.batch.plan import FileFlows, Prefetch, expand_paths, iter_flows, score_files
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
    prefetch: bool = True,
) -> ScoredRun:
    """Expand the inputs, load the model, and score each dump with the minutes before it as
    history. With `analyst_labels` the label store's corrections are applied as the live
    view applies them (`score`, `sources`); without, the model's own verdicts are kept
    (`eval` judges the model). `wrap` lets a caller watch the items go by (progress).

    With `prefetch` the dumps are read in a background thread from the start: the first ones
    while the model loads (importing scikit-learn is seconds of Python on one core), each
    next one while the current one is scored. Same output, same order, either way."""
    paths = expand_paths(inputs, glob=config.watch.glob)
    flows = iter_flows(
        paths, timezone=config.ingest.timezone, max_ratio=config.ingest.max_decompressed_ratio
    )
    files: Iterator[FileFlows] = Prefetch(flows) if prefetch else flows
    try:
        detector, path, meta = load_detector(config, model, warn)
        suppressor = Suppressor.from_config(config, detector.threshold) if analyst_labels else None
        rules = RuleSet.from_config(config.rules)
    except BaseException:
        if isinstance(files, Prefetch):
            files.close()
        raise

    def items() -> Iterator[tuple[FileFlows, pl.DataFrame]]:
        try:
            for item, scored in score_files(files, detector, rules=rules):
                if suppressor is not None and len(suppressor):
                    scored = suppressor.apply(scored, history=item.history).select(
                        list(SCORED_SCHEMA)
                    )
                yield item, scored
        finally:
            if isinstance(files, Prefetch):
                files.close()

    stream = items()
    return ScoredRun(
        paths, path, meta, wrap(paths, stream) if wrap else stream, float(detector.threshold)
    )
