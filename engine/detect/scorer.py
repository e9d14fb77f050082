"""Scorers: what turns flows into verdicts, and the contract every scorer keeps.

`Scorer` is that contract, written down so the pipeline, the batch commands and the TUI call
it without probing (no getattr/inspect): engine.detect.detector.Detector keeps it, and so does
RuleScorer, the rules alone, used when no model file exists at all (engine.models.registry
decides which scorer is current).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import polars as pl

from engine.core.schema import NORMAL

if TYPE_CHECKING:
    from engine.detect.rules import RuleSet


class Scorer(Protocol):
    """What the live pipeline, the batch commands and the TUI need from a model."""

    # Names the model in the status line, in alerts and in analysts' label events.
    version_: str
    # The one cut: a flow is flagged (and has an attack verdict) at score >= threshold.
    threshold: float

    def score(self, flows: pl.DataFrame, history: pl.DataFrame | None = None,
              rules: RuleSet | None = None, detail: bool = False) -> pl.DataFrame:
        """`flows` plus `score` (0..1), `verdict` and `reasons`: same rows, same order.
        `history` is the flows before these (window context); `rules`, when given, names the
        rules that fired in `reasons` (a scorer with rules of its own may ignore it); `detail`
        adds `why` (engine.detect.explain: what the verdict came from, null when the scorer
        has nothing beyond `reasons`)."""
        ...

    def explain(self, flows: pl.DataFrame, history: pl.DataFrame | None = None,
                rules: RuleSet | None = None) -> list[dict] | None:
        """Drill-down detail, one dict per flow; None when the scorer keeps nothing to explain
        beyond its `reasons` (the rules alone): the TUI then says so instead of guessing."""
        ...


class RuleScorer:
    """Rules only (no model file available): score = severity of the strongest matching rule."""

    version_ = "rules-only"

    def __init__(self, ruleset: RuleSet, threshold: float = 0.5) -> None:
        self.ruleset = ruleset
        self.threshold = threshold  # a rule of this severity or more flags its flows

    def score(self, flows: pl.DataFrame, history: pl.DataFrame | None = None,
              rules: RuleSet | None = None, detail: bool = False) -> pl.DataFrame:
        # `rules` is ignored: this scorer is its own rule set (the configured one).
        hits = self.ruleset.apply(flows)
        scored = flows.with_columns(
            score=hits["rule_severity"].fill_null(0.0),
            verdict=hits["rule_label"].fill_null(NORMAL),
            reasons=hits["rule_names"].fill_null(""),
        )
        return scored.with_columns(why=pl.lit(None, pl.String)) if detail else scored

    def explain(self, flows: pl.DataFrame, history: pl.DataFrame | None = None,
                rules: RuleSet | None = None) -> list[dict] | None:
        return None  # `reasons` already names every rule that fired; there is nothing more
