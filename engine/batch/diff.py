"""How verdicts on an archive change between two models (the replay diff before a swap)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from engine.batch.plan import iter_flows
from engine.core.schema import NORMAL

CHANGES_SCHEMA = {"before": pl.String(), "after": pl.String(), "flows": pl.Int64()}


def verdict_changes(
    paths: Sequence[Path], before: Any, after: Any, *, timezone: str = "local", rules: Any = None
) -> pl.DataFrame:
    """Counts of (verdict before, verdict after) over every flow of `paths`, both models given
    the same flows and the same history; most frequent change first, unchanged pairs included."""
    extra = {} if rules is None else {"rules": rules}
    parts = []
    for item in iter_flows(paths, timezone=timezone):
        if not item.flows.height:
            continue
        a = before.score(item.flows, history=item.history, **extra)["verdict"]
        b = after.score(item.flows, history=item.history, **extra)["verdict"]
        parts.append(
            pl.DataFrame({"before": a, "after": b}).group_by("before", "after").len("flows")
        )
    if not parts:
        return pl.DataFrame(schema=CHANGES_SCHEMA)
    counts = pl.concat(parts).group_by("before", "after").agg(pl.col("flows").sum())
    return counts.cast(CHANGES_SCHEMA).sort(  # type: ignore[arg-type]
        [pl.col("before") == pl.col("after"), "flows", "before", "after"],
        descending=[False, True, False, False],
    )


def flagged_by_class(changes: pl.DataFrame) -> pl.DataFrame:
    """Per verdict class: flows with it before, after, and the difference."""
    before = changes.group_by(pl.col("before").alias("verdict")).agg(pl.col("flows").sum().alias("before"))
    after = changes.group_by(pl.col("after").alias("verdict")).agg(pl.col("flows").sum().alias("after"))
    table = before.join(after, on="verdict", how="full", coalesce=True).fill_null(0)
    return table.with_columns(change=pl.col("after") - pl.col("before")).sort(
        pl.col("verdict") == NORMAL, "verdict"
    )
