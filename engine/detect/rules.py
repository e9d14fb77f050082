"""Rules: named nfdump filters with a label and a severity, applied to flows as whole columns.

`RuleSet.apply(flows)` gives, per flow and in the same order:
- rule_label: the label of the highest-severity matching rule (ties: the first in config order),
  null when no rule matches;
- rule_names: the names of all matching rules in config order, comma-joined ("" when none);
- rule_severity: the highest matching severity (0.0 when none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from engine.config.settings import RuleConfig, rule_problem
from engine.filters.language import FilterError, compile_filter

__all__ = ["FilterError", "Rule", "RuleError", "RuleSet", "compile_filter", "RULE_COLUMNS"]

RULE_COLUMNS: dict[str, pl.DataType] = {
    "rule_label": pl.String(),
    "rule_names": pl.String(),
    "rule_severity": pl.Float64(),
}


class RuleError(ValueError):
    """A rule that cannot be used; names the rule and, for a bad filter, carries the FilterError."""

    def __init__(self, rule: str, message: str, filter_error: FilterError | None = None) -> None:
        self.rule = rule
        self.filter_error = filter_error
        super().__init__(f"rule {rule!r}: {message}")


@dataclass(frozen=True)
class Rule:
    name: str
    label: str
    filter: str
    severity: float = 0.5
    expr: pl.Expr = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = rule_problem(self.name, self.label, self.filter, self.severity)
        if problem is not None and not problem.startswith("bad filter"):
            raise RuleError(self.name, problem)
        try:
            expr = compile_filter(self.filter)
        except FilterError as exc:
            raise RuleError(self.name, f"bad filter: {exc}", exc) from None
        object.__setattr__(self, "expr", expr)

    @classmethod
    def from_config(cls, rc: RuleConfig) -> Rule:
        return cls(name=rc.name, label=rc.label, filter=rc.filter, severity=float(rc.severity))


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise RuleError(rule.name, "duplicate rule name")
            seen.add(rule.name)

    @classmethod
    def from_config(cls, rules: Iterable[RuleConfig]) -> RuleSet:
        """Compile every rule; the first bad one raises RuleError naming it."""
        return cls(tuple(Rule.from_config(rc) for rc in rules))

    def __len__(self) -> int:
        return len(self.rules)

    def match_columns(self) -> list[pl.Expr]:
        """One boolean expression per rule, in config order (for drill-down: which rules fired)."""
        return [rule.expr.alias(rule.name) for rule in self.rules]

    def columns(self) -> list[pl.Expr]:
        """The three rule columns as expressions, to add to a lazy pipeline with with_columns."""
        return self._derive([rule.expr for rule in self.rules])

    def _derive(self, hits: list[pl.Expr]) -> list[pl.Expr]:
        """rule_label, rule_names, rule_severity from one boolean expression per rule."""
        if not self.rules:
            return [
                pl.lit(None, dtype=pl.String).alias("rule_label"),
                pl.lit("", dtype=pl.String).alias("rule_names"),
                pl.lit(0.0, dtype=pl.Float64).alias("rule_severity"),
            ]
        pairs = list(zip(self.rules, hits, strict=True))
        names = pl.concat_str(
            [pl.when(hit).then(pl.lit(rule.name)) for rule, hit in pairs],
            separator=",",
            ignore_nulls=True,
        ).fill_null("")
        severity = pl.max_horizontal(
            [pl.when(hit).then(pl.lit(float(rule.severity))).otherwise(0.0) for rule, hit in pairs]
        )
        # A when/then chain takes the first true branch: order by severity, stable on config order.
        ranked = sorted(pairs, key=lambda pair: -pair[0].severity)
        label = pl.when(ranked[0][1]).then(pl.lit(ranked[0][0].label, dtype=pl.String))
        for rule, hit in ranked[1:]:
            label = label.when(hit).then(pl.lit(rule.label, dtype=pl.String))  # type: ignore[assignment]
        return [
            label.otherwise(pl.lit(None, dtype=pl.String)).alias("rule_label"),
            names.alias("rule_names"),
            severity.cast(pl.Float64).alias("rule_severity"),
        ]

    def apply(self, flows: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
        """rule_label, rule_names, rule_severity: one row per flow, same order."""
        lazy = flows.lazy() if isinstance(flows, pl.DataFrame) else flows
        if not self.rules:
            # with_columns, not select: literal columns must broadcast to one row per flow.
            return lazy.with_columns(self.columns()).select(list(RULE_COLUMNS)).collect()
        # Evaluate each filter once into a mask column, then derive the three columns from masks.
        masks = [f"__rule_{i}" for i in range(len(self.rules))]
        matched = lazy.select([rule.expr.alias(m) for rule, m in zip(self.rules, masks, strict=True)])
        return matched.select(self._derive([pl.col(m) for m in masks])).collect()
