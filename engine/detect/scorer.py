"""Scorers: what turns flows into verdicts, and the contract every scorer keeps.

`Scorer` is that contract, written down so the pipeline, the batch commands and the TUI call
it without probing (no getattr/inspect): engine.detect.detector.Detector keeps it, and so does
RuleScorer, the rules alone, used when no model file exists at all (engine.models.registry
decides which scorer is current).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import polars as pl

from engine.core.schema import NORMAL, SCORED_SCHEMA, conform

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


UNSCORABLE = "could not be scored"
# More rows than this failing in one batch is a broken scorer, not a poisonous row: re-raised.
MAX_UNSCORABLE = 100


def score_or_skip(scorer, flows: pl.DataFrame, *, history=None, **extra):
    """Score `flows`, leaving out the rows the scorer fails on: (scored, kept, skipped).

    `kept` is None when every row was scored, else the UInt32 row indexes of `flows` the
    scored frame holds (in order); `skipped` has a SkippedLine (file, line, reason) per row
    left out. The parsers keep values out of range from the scorer; this is the net below
    them: a batch that fails is split in halves, recursively, until the failing rows are
    alone. Pieces are scored without the context of the other pieces, which only batches
    holding such a row see. More than MAX_UNSCORABLE failing rows re-raise the error.
    """
    from engine.ingest import SkippedLine

    try:
        return scorer.score(flows, history=history, **extra), None, ()
    except Exception as first:  # noqa: BLE001 - narrowed down below, re-raised if systematic
        error = first
    pieces: list[pl.DataFrame] = []
    kept: list[int] = []
    skipped: list = []

    def visit(lo: int, hi: int) -> None:
        part = flows.slice(lo, hi - lo)
        try:
            scored_part = scorer.score(part, history=history, **extra)
            # `why` (detail=True) rides along: the drill-down's evidence from scoring time
            schema = {**SCORED_SCHEMA, "why": pl.String()} if "why" in scored_part.columns else SCORED_SCHEMA
            pieces.append(conform(scored_part, schema))
            kept.extend(range(lo, hi))
            return
        except Exception as exc:  # noqa: BLE001
            if hi - lo > 1:
                mid = (lo + hi) // 2
                visit(lo, mid)
                visit(mid, hi)
                return
            if len(skipped) >= MAX_UNSCORABLE:
                raise error from exc
            row = part.row(0, named=True)
            text = (str(exc).strip().splitlines() or [""])[0][:160]
            skipped.append(SkippedLine(
                str(row.get("file")), int(row.get("line") or 0),
                f"{UNSCORABLE}: {type(exc).__name__}: {text}", "",
            ))

    mid = flows.height // 2
    if flows.height <= 1:
        visit(0, flows.height)
    else:
        visit(0, mid)
        visit(mid, flows.height)
    scored = pl.concat(pieces) if pieces else pl.DataFrame(schema=SCORED_SCHEMA)
    return scored, pl.Series("kept", kept, dtype=pl.UInt32), tuple(skipped)
