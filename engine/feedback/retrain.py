"""Retraining from rule labels plus analyst labels, judged on a held-back time slice.

Training targets: every flow's rule label (no rule = normal), overridden wherever an analyst
label covers the flow (the same matching as the Suppressor: the flow itself, its source in the
labelled window, or its feature vector), and analyst rows weigh `[labels] analyst_weight`.
The latest `holdout_fraction` of the flows (by ts_first) is held back: the candidate is fitted
on the rest, and old and candidate models are scored on the slice against those targets. The
candidate is accepted for a hot swap when its macro-F1 there is not lower than the old model's.
Then (by default) it is refitted on the whole window, written beside the older versions as
`model-YYYYMMDD-HHMMSS-<sha8>.skops`, and, when accepted, named in the directory's CURRENT file.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_fscore_support

from engine.core.errors import UserError
from engine.core.schema import NORMAL
from engine.detect.detector import Detector
from engine.detect.rules import RuleSet
from engine.feedback.labelstore import LabelStore
from engine.feedback.suppress import Suppressor
from engine.feedback.targets import training_targets
from engine.ingest import read_flows
from engine.models.registry import set_current
from engine.models.store import save_versioned

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class RetrainResult:
    path: Path | None  # the new model file (None when not saved)
    version: str
    accepted: bool  # hot-swap it: not worse than the old model on the holdout
    f1_before: dict[str, float]  # per class, old model on the holdout
    f1_after: dict[str, float]  # per class, candidate on the holdout
    macro_f1_before: float
    macro_f1_after: float
    changed: int  # flows of the window whose verdict differs between old and new model
    flows: int
    analyst_labelled: int  # flows whose target came from an analyst label
    holdout: int  # flows in the held-back slice
    detector: Any = field(default=None, repr=False, compare=False)

    def summary(self) -> str:
        """One line for the status bar."""
        if not self.f1_before:
            verb = "first model"
        else:
            verb = "swapped in" if self.accepted else "kept the old model"
        classes = ", ".join(
            f"{c} {self.f1_before.get(c, 0.0):.2f}->{self.f1_after.get(c, 0.0):.2f}"
            for c in sorted(set(self.f1_before) | set(self.f1_after))
        )
        return (
            f"{self.version}: {verb}; macro-F1 {self.macro_f1_before:.3f}->"
            f"{self.macro_f1_after:.3f} on {self.holdout} held-back flows; "
            f"{self.changed} flows re-verdicted; {self.analyst_labelled} analyst-labelled; "
            f"F1 {classes}"
        )


def _quiet(stage: str, fraction: float) -> None:
    pass


def _read(flows_source: pl.DataFrame | Sequence[str | Path], config: Any) -> pl.DataFrame:
    if isinstance(flows_source, pl.DataFrame):
        return flows_source
    flows, _ = read_flows([Path(p) for p in flows_source], timezone=config.ingest.timezone)
    return flows


def rule_targets(flows: pl.DataFrame, config: Any) -> pl.Series:
    """The rules' label per flow (normal where no rule fires)."""
    return training_targets(flows, rules=RuleSet.from_config(config.rules)).labels


def retrain_targets(
    flows: pl.DataFrame, store: LabelStore, config: Any
) -> tuple[pl.Series, pl.Series, pl.Series]:
    """(labels, sample_weight, is_analyst) per flow: analyst labels win and weigh more."""
    targets = training_targets(
        flows, analyst=Suppressor.from_store(store).matches(flows),
        rules=RuleSet.from_config(config.rules), analyst_weight=config.labels.analyst_weight,
    )
    assert targets.weight is not None
    return targets.labels, targets.weight, targets.is_analyst


def time_split(flows: pl.DataFrame, fraction: float) -> tuple[pl.Series, pl.Series]:
    """Masks (train, holdout): the holdout is the latest `fraction` of the flows by ts_first
    (flows sharing the cutoff instant all go to the holdout, so no instant is split)."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"holdout_fraction must be between 0 and 1, got {fraction}")
    ts = flows["ts_first"]
    if ts.n_unique() < 2:
        raise UserError("retraining needs flows spanning some time (one instant given)")
    cutoff = ts.sort().gather(int(round((1.0 - fraction) * (ts.len() - 1))))[0]
    holdout = ts >= cutoff
    if holdout.all():  # the cutoff fell on the first instant
        holdout = ts > ts.min()
    return ~holdout, holdout


def per_class_f1(truth: pl.Series, verdict: pl.Series) -> dict[str, float]:
    y_true = truth.cast(pl.String).to_numpy()
    y_pred = verdict.cast(pl.String).fill_null(NORMAL).to_numpy()
    present = sorted(set(y_true))
    _, _, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=present, zero_division=0
    )
    return {c: float(v) for c, v in zip(present, f1, strict=True)}


def _fresh_detector(base_model: Any) -> Any:
    """An unfitted Detector with the base model's constructor parameters (its settings, not
    its learned state), or the default Detector when there is no base model."""
    if base_model is None:
        return Detector()
    cls = type(base_model)
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    return cls(**{p: getattr(base_model, p) for p in names if hasattr(base_model, p)})


def _macro(scores: dict[str, float]) -> float:
    return float(np.mean(list(scores.values()))) if scores else 0.0


def retrain(
    flows_source: pl.DataFrame | Sequence[str | Path],
    store: LabelStore,
    base_model: Any,
    config: Any,
    *,
    progress: Progress | None = None,
    model_dir: str | Path | None = None,
    holdout_fraction: float | None = None,
    refit_full: bool = True,
    save: bool = True,
) -> RetrainResult:
    """Fit a new Detector on rule + analyst labels; see the module docstring.

    `progress(stage, fraction)` is called between stages (fraction 0..1) for a UI; it runs in
    the caller's thread (the TUI's background worker).
    """
    report = progress or _quiet
    report("reading flows", 0.0)
    flows = _read(flows_source, config).sort("ts_first", maintain_order=True)
    if flows.height == 0:
        raise UserError("retraining needs flows; none were read")
    report("labelling", 0.1)
    labels, weight, is_analyst = retrain_targets(flows, store, config)
    train, holdout = time_split(flows, holdout_fraction or config.labels.holdout_fraction)
    train_flows, hold_flows = flows.filter(train), flows.filter(holdout)
    if train_flows.height == 0 or hold_flows.height == 0:
        raise UserError("the time split left no flows to train on or to judge with")

    report("fitting candidate", 0.2)
    candidate = _fresh_detector(base_model).fit(
        train_flows, labels.filter(train), sample_weight=weight.filter(train).to_numpy()
    )
    report("judging on the held-back slice", 0.5)
    hold_truth = labels.filter(holdout)
    after = per_class_f1(hold_truth, candidate.score(hold_flows, history=train_flows)["verdict"])
    if base_model is not None:
        before_scored = base_model.score(hold_flows, history=train_flows)
        before = per_class_f1(hold_truth, before_scored["verdict"])
    else:
        before = {}
    accepted = base_model is None or _macro(after) >= _macro(before)

    final = candidate
    if refit_full:
        report("refitting on the whole window", 0.6)
        final = _fresh_detector(base_model).fit(flows, labels, sample_weight=weight.to_numpy())
    report("counting changed verdicts", 0.8)
    new_verdicts = final.score(flows)["verdict"]
    if base_model is not None:
        old_verdicts = base_model.score(flows)["verdict"]
        changed = int((old_verdicts.fill_null("") != new_verdicts.fill_null("")).sum())
    else:
        changed = flows.height

    path: Path | None = None
    version = "unsaved"
    if save:
        report("saving", 0.9)
        directory = Path(model_dir) if model_dir else config.model_dir_path
        metadata = {
            "retrained_from": getattr(base_model, "version_", None),
            "accepted": accepted,
            "f1_before": before,
            "f1_after": after,
            "analyst_labels": int(is_analyst.sum()),
            "flows": flows.height,
            "holdout_fraction": holdout_fraction or config.labels.holdout_fraction,
            "training_window": [str(flows["ts_first"].min()), str(flows["ts_first"].max())],
        }
        path = save_versioned(final, directory, metadata=metadata)
        version = path.stem
        if accepted:
            set_current(directory, path)
        try:
            final.version_ = version
        except AttributeError:  # a read-only attribute: the sidecar still names the version
            pass
    report("done", 1.0)
    return RetrainResult(
        path=path, version=version, accepted=accepted, f1_before=before, f1_after=after,
        macro_f1_before=_macro(before), macro_f1_after=_macro(after), changed=changed,
        flows=flows.height, analyst_labelled=int(is_analyst.sum()), holdout=hold_flows.height,
        detector=final,
    )
