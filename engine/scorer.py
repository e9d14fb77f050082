"""Which scorer the live pipeline uses: the model file, else the bundled model, else the rules.

The pipeline accepts any object with `score(flows, history=None) -> DataFrame` (flows plus
`score`, `verdict`, `reasons`, same rows and order), normally engine.detect.Detector.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from engine.config import Config
from engine.errors import UserError
from engine.schema import NORMAL

BUNDLED_MODEL = Path(__file__).with_name("models") / "default.skops"


class RuleScorer:
    """Rules only (no model file available): score = severity of the strongest matching rule."""

    version_ = "rules-only"

    def __init__(self, ruleset, threshold: float):
        self.ruleset = ruleset
        self.threshold = threshold

    def score(self, flows: pl.DataFrame, history: pl.DataFrame | None = None) -> pl.DataFrame:
        hits = self.ruleset.apply(flows)
        return flows.with_columns(
            score=hits["rule_severity"].fill_null(0.0),
            verdict=hits["rule_label"].fill_null(NORMAL),
            reasons=hits["rule_names"].fill_null(""),
        )


class UnscoredScorer:
    """SEAM: neither engine.rules nor a model is available yet; every flow passes as normal."""

    version_ = "unscored"

    def __init__(self, threshold: float):
        self.threshold = threshold

    def score(self, flows: pl.DataFrame, history: pl.DataFrame | None = None) -> pl.DataFrame:
        return flows.with_columns(
            score=pl.lit(0.0, pl.Float64), verdict=pl.lit(NORMAL), reasons=pl.lit("")
        )


def load_scorer(config: Config, model: str | None = None):
    path = model or config.model.path
    if path or BUNDLED_MODEL.exists():
        try:
            from engine.modelstore import load_model
        except ImportError:
            raise UserError("model files need engine.modelstore, which is not merged yet") from None
        chosen = Path(path) if path else BUNDLED_MODEL
        if not chosen.exists():
            raise UserError(f"{chosen}: no such model file")
        loaded = load_model(chosen)
        return loaded[0] if isinstance(loaded, tuple) else loaded
    try:
        from engine.rules import RuleSet
    except ImportError:
        return UnscoredScorer(config.model.threshold)
    return RuleScorer(RuleSet.from_config(config.rules), config.model.threshold)
