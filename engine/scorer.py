"""Which scorer the live pipeline uses: --model, else [model] path, else the bundled model;
rules alone only when no model file exists at all.

The pipeline accepts any object with `score(flows, history=None) -> DataFrame` (flows plus
`score`, `verdict`, `reasons`, same rows and order), normally engine.detect.Detector.
"""

from __future__ import annotations

import argparse

import polars as pl

from engine.config import Config
from engine.schema import NORMAL


class RuleScorer:
    """Rules only (no model file available): score = severity of the strongest matching rule."""

    version_ = "rules-only"

    def __init__(self, ruleset):
        self.ruleset = ruleset

    def score(self, flows: pl.DataFrame, history: pl.DataFrame | None = None) -> pl.DataFrame:
        hits = self.ruleset.apply(flows)
        return flows.with_columns(
            score=hits["rule_severity"].fill_null(0.0),
            verdict=hits["rule_label"].fill_null(NORMAL),
            reasons=hits["rule_names"].fill_null(""),
        )


def load_scorer(config: Config, model: str | None = None, console=None):
    """The Detector the batch commands would use (same checks and messages), or RuleScorer
    when no model was asked for and the bundled one is missing."""
    from engine.commands.support import load_detector, ruleset
    from engine.modelstore import BUNDLED_MODEL

    if not (model or config.model.path) and not BUNDLED_MODEL.exists():
        return RuleScorer(ruleset(config))
    detector, _path, _meta = load_detector(argparse.Namespace(model=model), config, console)
    return detector
