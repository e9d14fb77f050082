"""ModelController: retraining on analysts' labels (`R`), rolling back to a model version (the
command palette), and the drill-down's explainer for the scorer in use.

Retrain and rollback run as thread workers of the app (one at a time, group "retrain"); they
post tui.messages (Activity, Saved, Reapplied) and never touch a widget. A new model is
swapped into the feed: later batches are scored with it, the drill-down explains with it, the
status line names it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from engine.config.settings import Config
from engine.core.dumpfiles import list_dumps
from engine.detect.features import HISTORY_SECONDS
from engine.detect.rules import RuleSet
from engine.detect.scorer import Scorer
from engine.feedback.suppress import Feedback
from engine.live.pipeline import Pipeline
from engine.models.registry import rollback
from engine.models.store import list_versions
from tui.messages import Activity, Reapplied, Saved

if TYPE_CHECKING:
    from tui.app import FlowTriageApp

# (the flows to explain, the retained flows) -> one detail dict per flow, or None when the
# scorer keeps nothing to explain beyond its reasons
Explainer = Callable[[pl.DataFrame, pl.DataFrame | None], list[dict] | None]


def explainer_of(scorer: Scorer, config: Config | None = None,
                 pipeline: Pipeline | None = None) -> Explainer:
    """The scorer's explain() with the rules of `config` and, as window context, the
    pipeline's recent flows (the flows before, not only the retained flagged ones); without a
    pipeline the retained flows are the context."""
    rules = RuleSet.from_config(config.rules) if config is not None else None

    def explainer(flows: pl.DataFrame, retained: pl.DataFrame | None) -> list[dict] | None:
        history = pipeline.history if pipeline is not None else None
        return scorer.explain(flows, history=history if history is not None else retained, rules=rules)

    return explainer


class ModelController:
    def __init__(self, app: FlowTriageApp) -> None:
        self.app = app

    def explainer(self) -> Explainer | None:
        """The scorer in use's explainer (None until the pipeline has loaded one)."""
        scorer = self.app.feed.scorer
        if scorer is None:
            return None
        return explainer_of(scorer, self.app.config, self.app.feed.pipeline)

    def in_context(self, row: dict) -> bool:
        """Whether the window context of `row` is still kept (the pipeline's recent flows), so
        recomputing its features now sees what scoring saw. A hand-fed feed keeps no window
        context: only a row without scoring-time detail (tests) is explained from its own."""
        pipeline = self.app.feed.pipeline
        if pipeline is None:
            return not row.get("why")
        history = pipeline.history
        ts = row.get("ts_first")
        if history is None or history.height == 0 or ts is None:
            return False
        oldest = history["ts_first"].min()
        # windows are tumbling, aligned with dt.truncate: the flow's longest window starts at
        # its time truncated to HISTORY_SECONDS, and the kept flows must reach back to there
        span = int(HISTORY_SECONDS)  # divides an hour, so truncating within the hour is exact
        start = ts - timedelta(seconds=(ts.minute * 60 + ts.second) % span, microseconds=ts.microsecond)
        return isinstance(oldest, datetime) and oldest <= start

    def versions(self) -> list[str]:
        try:
            return [v.path.stem for v in list_versions(self.app.config.model_dir_path)]
        except OSError:
            return []

    # ---- retrain -----------------------------------------------------------------------

    def retrain(self) -> None:
        app = self.app
        feedback = app.labels.feedback
        if feedback is None:
            app.notify("Labels are not available yet (the pipeline is starting)", severity="warning", markup=False)
            return
        pipeline = app.feed.pipeline
        if pipeline is None:
            app.notify("Retraining needs the live pipeline", severity="warning", markup=False)
            return
        app.set_activity("retraining…", "bold yellow")
        app.run_worker(lambda: self._retrain(feedback, pipeline), thread=True, exclusive=True,
                       exit_on_error=False, group="retrain", description="retrain")

    def _retrain(self, feedback: Feedback, pipeline: Pipeline) -> None:
        # Imported here, on the worker: scikit-learn takes seconds to import, and the first
        # screen must not wait for it (the pipeline loads the model behind that screen).
        from engine.detect.detector import Detector
        from engine.feedback.retrain import retrain

        app, config = self.app, self.app.config
        # the dumps the watcher reads (same glob, recursion and partial-file rules)
        dumps = list_dumps(pipeline.directory, config.watch.glob, recursive=config.watch.recursive)
        if not dumps:
            app.post_message(Saved("retrain: no dumps in the watched directory", error=True))
            return
        scorer = pipeline.scorer
        base = scorer if isinstance(scorer, Detector) else None  # rules only: a first model

        def progress(stage: str, fraction: float) -> None:
            app.post_message(Activity(f"retraining on {len(dumps)} dumps: {stage} {fraction:.0%}"))

        try:
            result = retrain(dumps, feedback.store, base, config, progress=progress)
        except Exception as exc:  # noqa: BLE001 - shown, the old model keeps running
            app.post_message(Saved(f"retrain failed: {exc}", error=True))
            return
        if result.accepted:
            self._swap(result.detector)
        app.post_message(Saved(("" if result.accepted else "not swapped: ") + result.summary()))

    # ---- rollback ----------------------------------------------------------------------

    def rollback(self, version: str | None = None) -> None:
        if self.app.feed.pipeline is None:
            self.app.notify("Rollback needs the live pipeline", severity="warning", markup=False)
            return
        self.app.run_worker(lambda: self._rollback(version), thread=True, exclusive=True,
                            exit_on_error=False, group="retrain", description="rollback")

    def _rollback(self, version: str | None) -> None:
        try:
            path, model = rollback(self.app.config.model_dir_path, version)
        except Exception as exc:  # noqa: BLE001
            self.app.post_message(Saved(f"rollback failed: {exc}", error=True))
            return
        model.version_ = path.stem
        self._swap(model)
        self.app.post_message(Saved(f"model {path.stem} is current (rolled back)"))

    def _swap(self, model: Scorer) -> None:
        """Hot-swap the scorer (worker thread), then apply the labels again and show it."""
        app = self.app
        app.feed.swap_scorer(model)
        feedback = app.labels.feedback
        if feedback is not None:
            app.feed.reapply(feedback)
        app.post_message(Reapplied())
