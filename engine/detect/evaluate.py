"""Judging verdicts and scores against ground truth: the numbers `flowtriage eval` prints.

Only rows with a truth label count; the unlabelled rest is reported, not guessed. "Attack"
means truth != normal, "flagged" means verdict != normal (an `anomaly` verdict is flagged).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.core.schema import LABELS, NORMAL

# Column headers of the confusion matrix must stay narrow enough for 100 columns.
_SHORT = {
    "normal": "normal",
    "dns_flood": "flood",
    "amplification": "amplif",
    "tunnel": "tunnel",
    "scan": "scan",
    "zero_packet": "zero",
    "open_resolver": "openres",
    "anomaly": "anomaly",
}


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    classes: tuple[str, ...]  # row (truth) and column (verdict) order of `confusion`
    confusion: tuple[tuple[int, ...], ...]
    per_class: dict[str, ClassMetrics]  # classes present in truth
    macro_f1: float  # mean F1 over classes present in truth
    accuracy: float
    roc_auc: float | None  # score, attack vs normal; None when truth has only one side
    precision_at: dict[int, float]  # share of attacks among the n highest scores
    normal_flagged: float  # share of truly normal flows with a verdict other than normal
    normal_total: int
    top_confusions: tuple[tuple[str, str, int], ...]  # (truth, verdict, count), largest first
    labelled: int
    unlabelled: int
    extra: dict[str, Any] = field(default_factory=dict)  # caller context (model, files)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["confusion"] = [list(row) for row in self.confusion]
        out["top_confusions"] = [
            {"truth": t, "verdict": v, "count": n} for t, v, n in self.top_confusions
        ]
        out["precision_at"] = {str(n): p for n, p in self.precision_at.items()}
        return out


def evaluate(
    truth: pl.Series,
    verdict: pl.Series,
    score: pl.Series,
    *,
    n: tuple[int, ...] | list[int] = (100, 1000),
    classes: tuple[str, ...] | list[str] | None = None,
    top: int = 5,
) -> EvalReport:
    """Compare `verdict`/`score` with `truth` (aligned rows; null truth = unlabelled, skipped)."""
    # Late (start-up time): scikit-learn's metrics pull in scipy.stats, over a second of
    # imports that `train --help` and `eval --help` (which import this module) must not pay.
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    if not (truth.len() == verdict.len() == score.len()):
        raise ValueError("truth, verdict and score must have the same length")
    frame = pl.DataFrame(
        {
            "truth": truth.cast(pl.String),
            "verdict": verdict.cast(pl.String).fill_null(NORMAL),
            "score": score.cast(pl.Float64).fill_null(0.0).fill_nan(0.0),
        }
    )
    labelled = frame.filter(pl.col("truth").is_not_null())
    y_true = labelled["truth"].to_numpy()
    y_pred = labelled["verdict"].to_numpy()
    order = _class_order(classes, labelled)
    present = [c for c in order if c in set(y_true)]

    matrix = (
        confusion_matrix(y_true, y_pred, labels=order)
        if labelled.height
        else np.zeros((len(order), len(order)), dtype=int)
    )
    per_class: dict[str, ClassMetrics] = {}
    if present:
        p, r, f, s = precision_recall_fscore_support(
            y_true, y_pred, labels=present, zero_division=0
        )
        per_class = {
            c: ClassMetrics(float(p[i]), float(r[i]), float(f[i]), int(s[i]))
            for i, c in enumerate(present)
        }
    macro = float(np.mean([m.f1 for m in per_class.values()])) if per_class else 0.0
    accuracy = float(np.mean(y_true == y_pred)) if labelled.height else 0.0

    attack = labelled["truth"] != NORMAL
    roc = None
    if 0 < attack.sum() < labelled.height:
        roc = float(roc_auc_score(attack.to_numpy(), labelled["score"].to_numpy()))
    ranked = labelled.with_columns(attack=attack).sort("score", descending=True, maintain_order=True)
    precision_at = {
        k: _mean(ranked["attack"].head(k)) if ranked.height else 0.0 for k in n
    }
    normals = labelled.filter(pl.col("truth") == NORMAL)
    flagged = (
        _mean(normals["verdict"] != NORMAL) if normals.height else 0.0
    )
    confusions = (
        labelled.filter(pl.col("truth") != pl.col("verdict"))
        .group_by("truth", "verdict")
        .len()
        .sort(["len", "truth", "verdict"], descending=[True, False, False])
        .head(top)
    )
    return EvalReport(
        classes=tuple(order),
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
        per_class=per_class,
        macro_f1=macro,
        accuracy=accuracy,
        roc_auc=roc,
        precision_at=precision_at,
        normal_flagged=flagged,
        normal_total=normals.height,
        top_confusions=tuple((t, v, int(c)) for t, v, c in confusions.iter_rows()),
        labelled=labelled.height,
        unlabelled=frame.height - labelled.height,
    )


def _class_order(classes, labelled: pl.DataFrame) -> list[str]:
    # The vocabulary's order first (stable between runs), then anything else alphabetically.
    seen = set(labelled["truth"].unique().to_list()) | set(labelled["verdict"].unique().to_list())
    base = list(classes) if classes is not None else list(LABELS)
    order = [c for c in base if c in seen or classes is not None]
    return order + sorted(seen - set(order))


def format_report(report: EvalReport) -> str:
    """A fixed-width plain-text report (fits 100 columns)."""
    lines = [
        f"flows labelled: {report.labelled}   unlabelled (ignored): {report.unlabelled}",
        "",
        "confusion matrix (rows: truth, columns: verdict)",
    ]
    heads = [_SHORT.get(c, c[:7]) for c in report.classes]
    width = max([8, *(len(h) + 1 for h in heads)])
    width = max(width, *(len(str(v)) + 1 for row in report.confusion for v in row)) if heads else 8
    lines.append(f"{'':<14}" + "".join(f"{h:>{width}}" for h in heads))
    for name, row in zip(report.classes, report.confusion, strict=True):
        if any(row) or name in report.per_class:
            lines.append(f"{name[:14]:<14}" + "".join(f"{v:>{width}}" for v in row))
    lines += ["", f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name, m in report.per_class.items():
        lines.append(
            f"{name[:14]:<14}{m.precision:>10.3f}{m.recall:>10.3f}{m.f1:>10.3f}{m.support:>10}"
        )
    roc = "n/a (truth has one side only)" if report.roc_auc is None else f"{report.roc_auc:.4f}"
    lines += [
        "",
        f"macro-F1 {report.macro_f1:.4f}   accuracy {report.accuracy:.4f}   "
        f"ROC AUC (attack vs normal) {roc}",
        "precision@n  "
        + "   ".join(f"@{k}: {p:.3f}" for k, p in report.precision_at.items()),
        f"normal flows flagged: {report.normal_flagged:.2%} of {report.normal_total}",
    ]
    if report.top_confusions:
        lines += ["", "top confusions (truth -> verdict)"]
        lines += [f"  {t} -> {v}: {n}" for t, v, n in report.top_confusions]
    return "\n".join(lines) + "\n"


def _mean(mask: pl.Series) -> float:
    """The share of true values (0.0 for an empty or all-null series)."""
    share = mask.cast(pl.Float64).mean()
    return float(share) if isinstance(share, int | float) else 0.0
