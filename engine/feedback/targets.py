"""Training targets: one label, origin and weight per flow from every source of labels.

The one definition used by `flowtriage train` and by retraining (`R`). Precedence, strongest
first: an analyst's label (the LabelStore), a labels file (`--labels`), a matching rule, then
the default class (normal). Every flow gets a label, an origin and a weight, so the summary and
the model's sidecar can say where the training signal came from. Weights are relative: a
rule's or the default's 1, a labels file's 2, an analyst's `[labels] analyst_weight`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.core.schema import ANOMALY, FLOW_KEY, NORMAL
from engine.detect.rules import RuleSet
from engine.feedback.labelsfile import join_labels
from engine.feedback.labelstore import LabelStore, training_label_overrides

ORIGINS: tuple[str, ...] = ("analyst", "file", "rule", "default")
FILE_WEIGHT = 2.0
RULE_WEIGHT = 1.0


@dataclass(frozen=True)
class TrainingLabels:
    labels: pl.Series  # String, one per flow, never null
    origin: pl.Series  # String, one of ORIGINS per flow
    weight: pl.Series | None = None  # Float64 per flow (training_targets sets it)

    @property
    def is_analyst(self) -> pl.Series:
        return (self.origin == "analyst").alias("is_analyst")

    def counts(self) -> dict[str, int]:
        return _counts(self.labels)

    def origin_counts(self) -> dict[str, int]:
        return _counts(self.origin)


def assemble_labels(
    n: int,
    *,
    analyst: pl.Series | None = None,
    labels_file: pl.Series | None = None,
    rules: pl.Series | None = None,
    default: str = NORMAL,
) -> TrainingLabels:
    """Combine aligned label Series (null = no opinion) for `n` flows by precedence."""
    sources = {"analyst": analyst, "file": labels_file, "rule": rules}
    columns = {
        name: (series if series is not None else pl.repeat(None, n, dtype=pl.String, eager=True))
        .cast(pl.String)
        .alias(name)
        for name, series in sources.items()
    }
    for name, series in columns.items():
        if series.len() != n:
            raise ValueError(f"{name} labels have {series.len()} rows, expected {n}")
    frame = pl.DataFrame(list(columns.values()))
    # The unsupervised-only verdict is never a class to learn.
    frame = frame.with_columns(
        pl.when(pl.col(c) == ANOMALY).then(None).otherwise(pl.col(c)).alias(c) for c in columns
    )
    chain = (
        pl.when(pl.col("analyst").is_not_null()).then(pl.lit("analyst"))
        .when(pl.col("file").is_not_null()).then(pl.lit("file"))
        .when(pl.col("rule").is_not_null()).then(pl.lit("rule"))
    )
    out = frame.select(
        pl.coalesce("analyst", "file", "rule", pl.lit(default)).alias("label"),
        chain.otherwise(pl.lit("default")).alias("origin"),
    )
    return TrainingLabels(out["label"], out["origin"])


def training_targets(
    flows: pl.DataFrame,
    *,
    analyst: pl.Series | pl.DataFrame | None = None,
    labels_file: pl.Series | pl.DataFrame | None = None,
    rules: RuleSet | None = None,
    analyst_weight: float = 10.0,
) -> TrainingLabels:
    """Labels, origins and weights aligned to `flows`. `analyst` and `labels_file` are String
    Series aligned to flows, or frames keyed like a labels file (`file, line, label` or
    FLOW_KEY + `label`); `rules` labels the flows no one else did."""

    def aligned(source: pl.Series | pl.DataFrame | None) -> pl.Series | None:
        if source is None or isinstance(source, pl.Series):
            return source
        return join_labels(flows, source)

    rule_labels = rules.apply(flows)["rule_label"] if rules is not None else None
    result = assemble_labels(
        flows.height, analyst=aligned(analyst), labels_file=aligned(labels_file), rules=rule_labels
    )
    weight = result.origin.replace_strict(
        {"analyst": float(analyst_weight), "file": FILE_WEIGHT, "rule": RULE_WEIGHT,
         "default": RULE_WEIGHT},
        return_dtype=pl.Float64,
    ).alias("weight")
    return TrainingLabels(result.labels, result.origin, weight)


def analyst_labels(
    flows: pl.DataFrame, db: str | Path, *, extra_classes: Sequence[str] = ()
) -> pl.Series | None:
    """Flow-scoped analyst labels from the LabelStore at `db`, aligned with `flows`.

    None when there is no store (the file does not exist). Source- and vector-scoped labels are the LabelStore's own business
    (applied when scoring); training uses labels on individual flows.
    """
    if not Path(db).is_file():
        return None

    with LabelStore(db, extra_classes=extra_classes) as store:
        current = training_label_overrides(store.current(scope="flow"))
    if current.height == 0:
        return None
    by_line = current.filter(pl.col("file").is_not_null() & pl.col("line").is_not_null())
    by_key = current.filter(
        (pl.col("file").is_null() | pl.col("line").is_null())
        & pl.all_horizontal(pl.col(c).is_not_null() for c in FLOW_KEY)
    )
    parts = []
    if by_line.height:
        parts.append(join_labels(flows, by_line.select("file", "line", "label")))
    if by_key.height:
        parts.append(join_labels(flows, by_key.select(*FLOW_KEY, "label")))
    if not parts:
        return None
    return pl.DataFrame([p.alias(f"p{i}") for i, p in enumerate(parts)]).select(
        pl.coalesce(pl.all()).alias("label")
    )["label"]


def _counts(series: pl.Series) -> dict[str, int]:
    counted = series.value_counts(sort=True)
    return {str(k): int(v) for k, v in counted.iter_rows()}
