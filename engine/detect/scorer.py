"""Scorers: what turns flows into verdicts. RuleScorer is the rules alone, used when no model
file exists at all (engine.models.registry decides which scorer is current).

The pipeline accepts any object with `score(flows, history=None) -> DataFrame` (flows plus
`score`, `verdict`, `reasons`, same rows and order), normally engine.detect.detector.Detector.
"""

from __future__ import annotations

import polars as pl

from engine.core.schema import NORMAL


class RuleScorer:
    """Rules only (no model file available): score = severity of the strongest matching rule."""

    version_ = "rules-only"

    def __init__(self, ruleset, threshold: float = 0.5):
        self.ruleset = ruleset
        self.threshold = threshold  # a rule of this severity or more flags its flows

    def score(self, flows: pl.DataFrame, history: pl.DataFrame | None = None) -> pl.DataFrame:
        hits = self.ruleset.apply(flows)
        return flows.with_columns(
            score=hits["rule_severity"].fill_null(0.0),
            verdict=hits["rule_label"].fill_null(NORMAL),
            reasons=hits["rule_names"].fill_null(""),
        )
