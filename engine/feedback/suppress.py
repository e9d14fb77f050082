"""Analyst labels take effect at once, before any retraining: the Suppressor.

The pipeline (and `score`) call `Suppressor.from_store(store, threshold).apply(scored, history)`
after the Detector (`history`: earlier flows, for the window context of the vector key). For each scored flow it looks for the most specific effective analyst label
that covers it:

1. scope `flow`: the same flow (same dump file name and line, or the same FLOW_KEY columns);
2. scope `source`: the same client address (the end that is not port 53) with ts_first inside
   the labelled window (by default the rotation bucket, `[labels] source_window_seconds`);
3. scope `vector`: the same feature vector in the same context: an equal engine.feedback.vectorkey key
   (protocol, DNS role, packets and bytes to `[labels] vector_digits` significant digits,
   duration octave, and the octaves of the client's flows and servers in its 10 s window).

A `normal` label (a false positive) sets the verdict to `normal` and scales the score into
[0, threshold/10), so the flow leaves the queue and sinks below unjudged flows; any other label sets the verdict to that class and
lifts the score to at least midway between the threshold and 1. Either way "analyst:<label>"
is appended to the reasons. Everything is a join over whole columns; no loop over rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from engine.core.dumpfiles import dump_name_expr
from engine.core.roles import client_addr
from engine.core.schema import FLOW_KEY, NORMAL
from engine.feedback.labelstore import LabelEvent, LabelStore
from engine.feedback.vectorkey import DEFAULT_DIGITS, vector_keys, with_vector_keys

# A confirmed false positive sinks below every flow the analyst has not judged: scaled into
# [0, threshold * SINK), it keeps its order among other suppressed flows.
SINK = 0.1


@dataclass(frozen=True)
class Suppressor:
    threshold: float = 0.5
    digits: int = DEFAULT_DIGITS
    by_provenance: pl.DataFrame = field(default_factory=pl.DataFrame)  # file, line, label
    by_key: pl.DataFrame = field(default_factory=pl.DataFrame)  # FLOW_KEY..., label
    by_source: pl.DataFrame = field(default_factory=pl.DataFrame)  # source_addr, window, label
    by_vector: pl.DataFrame = field(default_factory=pl.DataFrame)  # vector_key, label

    @classmethod
    def from_store(cls, store: LabelStore, threshold: float = 0.5) -> Suppressor:
        current = store.current()
        flow = current.filter(pl.col("scope") == "flow")
        by_provenance = (
            flow.filter(pl.col("file").is_not_null() & pl.col("line").is_not_null())
            .unique(["file", "line"], keep="last", maintain_order=True)
            .select("file", "line", pl.col("label").alias("__flow_p"))
        )
        by_key = (
            flow.filter(pl.all_horizontal(pl.col(list(FLOW_KEY)).is_not_null()))
            .unique(list(FLOW_KEY), keep="last", maintain_order=True)
            .select(*FLOW_KEY, pl.col("label").alias("__flow_k"))
        )
        by_source = current.filter(pl.col("scope") == "source").select(
            pl.col("source_addr").alias("__client"), "window_start", "window_end",
            pl.col("id").alias("__rule"), pl.col("label").alias("__source"),
        )
        by_vector = (
            current.filter((pl.col("scope") == "vector") & pl.col("vector_key").is_not_null())
            .unique("vector_key", keep="last", maintain_order=True)
            .select("vector_key", pl.col("label").alias("__vector"))
        )
        return cls(threshold, store.digits, by_provenance, by_key, by_source, by_vector)

    @classmethod
    def from_config(cls, config: Any, threshold: float | None = None) -> Suppressor:
        """The analysts' labels of the configured store, or an empty Suppressor when there is
        no store yet (batch scoring never creates one)."""
        threshold = 0.5 if threshold is None else threshold
        if not config.labels_db_path.is_file():
            return cls(threshold, config.labels.vector_digits)
        with LabelStore.from_config(config, read_only=True) as store:
            return cls.from_store(store, threshold)

    def __len__(self) -> int:
        return (
            self.by_provenance.height + self.by_key.height + self.by_source.height
            + self.by_vector.height
        )

    def matches(self, scored: pl.DataFrame, history: pl.DataFrame | None = None) -> pl.Series:
        """Per row of `scored`: the analyst label that covers it, or null. A `vector_key`
        column of `scored` is used as is; otherwise keys are computed (with `history`)."""
        frame = scored.select(
            *FLOW_KEY, dump_name_expr(pl.col("file")).alias("file"), "line",
            client_addr().alias("__client"),
        ).with_row_index("__i")
        found: list[pl.Expr] = []
        if self.by_provenance.height:
            frame = frame.join(self.by_provenance, on=["file", "line"], how="left")
            found.append(pl.col("__flow_p"))
        if self.by_key.height:
            frame = frame.join(self.by_key, on=list(FLOW_KEY), how="left")
            found.append(pl.col("__flow_k"))
        if self.by_source.height:
            ts = pl.col("ts_first").dt.epoch("ms")
            hits = (
                frame.select("__i", "__client", "ts_first")
                .join(self.by_source, on="__client", how="inner")
                .filter((ts >= pl.col("window_start")) & (ts < pl.col("window_end")))
                .sort("__rule")
                .group_by("__i")
                .agg(pl.col("__source").last())
            )
            frame = frame.join(hits, on="__i", how="left")
            found.append(pl.col("__source"))
        if self.by_vector.height:
            keys = (
                scored["vector_key"] if "vector_key" in scored.columns
                else vector_keys(scored, history, self.digits)
            )
            frame = frame.with_columns(keys.alias("vector_key")).join(
                self.by_vector, on="vector_key", how="left"
            )
            found.append(pl.col("__vector"))
        if not found:
            return pl.Series("analyst", [None] * scored.height, dtype=pl.String)
        return frame.sort("__i").select(pl.coalesce(found).alias("analyst")).to_series()

    def apply(
        self, scored: pl.DataFrame, history: pl.DataFrame | None = None, *,
        keep_model: bool = False,
    ) -> pl.DataFrame:
        """`scored` with analyst labels applied (same rows and order).

        With `keep_model` the model's own output is kept in `model_score`, `model_verdict`
        and `model_reasons` (added once, then always the starting point), so applying again
        after a new label or an undo gives the right answer from the same frame: what the live
        pipeline and the TUI need. Without it the columns are unchanged (batch `score`).
        """
        originals = {"score": "model_score", "verdict": "model_verdict", "reasons": "model_reasons"}
        if keep_model and "model_score" not in scored.columns:
            scored = scored.with_columns(pl.col(c).alias(m) for c, m in originals.items())
        if keep_model:
            scored = scored.with_columns(pl.col(m).alias(c) for c, m in originals.items())
        if not len(self) or scored.height == 0:
            return scored
        analyst = self.matches(scored, history)
        lifted = self.threshold + (1.0 - self.threshold) / 2
        tag = pl.concat_str([pl.lit("analyst:"), pl.col("__analyst")])
        return (
            scored.with_columns(analyst.alias("__analyst"))
            .with_columns(
                pl.when(pl.col("__analyst").is_null())
                .then(pl.col("score"))
                .when(pl.col("__analyst") == NORMAL)
                .then(pl.col("score") * pl.lit(self.threshold * SINK))
                .otherwise(pl.max_horizontal(pl.col("score"), pl.lit(lifted)))
                .alias("score"),
                pl.coalesce("__analyst", "verdict").alias("verdict"),
                pl.when(pl.col("__analyst").is_null())
                .then(pl.col("reasons"))
                .when(pl.col("reasons").is_null() | (pl.col("reasons") == ""))
                .then(tag)
                .otherwise(pl.concat_str([pl.col("reasons"), pl.lit("; "), tag]))
                .alias("reasons"),
            )
            .drop("__analyst")
        )


class Feedback:
    """What the live pipeline and the TUI share: one LabelStore and an up-to-date Suppressor.

    The Suppressor is rebuilt only when the store changed (a label from this process or from
    another analyst's), checked with one cheap query per `apply`.
    """

    def __init__(
        self, store: LabelStore, threshold: float, normal_scope: str = "vector",
        attack_scope: str = "flow",
    ):
        self.store = store
        self.threshold = threshold
        self.normal_scope = normal_scope
        self.attack_scope = attack_scope
        self._seen = -1
        self._suppressor = Suppressor(threshold, store.digits)

    @classmethod
    def from_config(cls, config, threshold: float | None = None) -> Feedback:
        store = LabelStore.from_config(config)
        return cls(store, 0.5 if threshold is None else threshold,
                   config.labels.normal_scope, config.labels.attack_scope)

    def set_threshold(self, threshold: float) -> None:
        """A new model's cut (hot swap): labels are applied against it from now on."""
        self.threshold = threshold
        self._seen = -1

    @property
    def suppressor(self) -> Suppressor:
        last = self.store.last_id()
        if last != self._seen:
            self._suppressor = Suppressor.from_store(self.store, self.threshold)
            self._seen = last
        return self._suppressor

    def apply(self, scored: pl.DataFrame, history: pl.DataFrame | None = None) -> pl.DataFrame:
        """Vector keys attached, analyst labels applied, the model's output kept aside."""
        keyed = with_vector_keys(scored, history, self.store.digits)
        return self.suppressor.apply(keyed, keep_model=True)

    def label(self, row: Mapping[str, Any], label: str, *, scope: str | None = None,
              note: str | None = None, model_version: str | None = None) -> LabelEvent:
        """The `n` (label "normal") and `l` keys: durable when it returns. The scope defaults
        to `[labels] normal_scope` for normal and `attack_scope` for other classes: promoting
        every lookalike of one attack flow is riskier than quieting lookalikes of a false
        positive (bench/feedback.py --attack-scope vector shows it)."""
        if scope is None:
            scope = self.normal_scope if label == NORMAL else self.attack_scope
        return self.store.add(
            row, label, scope=scope, note=note,
            model_version=model_version,
            verdict=row.get("model_verdict", row.get("verdict")),
            score=row.get("model_score", row.get("score")),
        )

    def note(self, row: Mapping[str, Any], text: str) -> LabelEvent:
        """The `N` key."""
        return self.store.add_note(row, text)

    def undo(self) -> LabelEvent | None:
        """The `u` key: this user's latest label or note."""
        return self.store.undo_last()
