"""A live session: what `watch` (TUI or headless) and `demo` run, wired from the config.

The command builds a Session; the TUI (or the headless loop) calls `open()` behind its first
screen, because loading the model takes seconds. Nothing here knows about the UI.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.config.settings import Config
from engine.core.errors import UserError
from engine.detect.scorer import Scorer
from engine.feedback.suppress import Feedback
from engine.live.pipeline import Pipeline
from engine.live.replay import Replayer, sample_dumps
from engine.live.sink import EventSink, JsonlSink
from engine.live.state import StateError
from engine.models.registry import load_scorer, model_path, rule_scorer


def open_feedback(config: Config, threshold: float, *, create: bool) -> Feedback | None:
    """The analysts' labels for the pipeline: the TUI opens (or creates) the label store; a
    headless watcher applies the labels of an existing store and never creates one."""
    if not create and not config.labels_db_path.is_file():
        return None
    return Feedback.from_config(config, threshold=threshold)


@dataclass
class Session:
    """One live run over `directory`: the pipeline's options and what to do once it reads."""

    directory: Path
    config: Config
    subtitle: str
    model: str | None = None
    rules_only: bool = False
    keep_all: bool = False
    from_start: bool = False
    since: float | None = None  # epoch seconds: dumps older than this count as read
    state_path: Path | None = None
    create_labels: bool = True  # the TUI creates a label store; headless only uses one
    temporary: bool = False  # state, labels and models are deleted at the end (the demo)
    on_open: Callable[[], object] | None = field(default=None, repr=False)

    def check(self) -> None:
        """Refuse what can be known to fail before anything slow starts."""
        if not self.directory.is_dir():
            raise UserError(f"{self.directory}: not a directory")
        requested = self.model or self.config.model.path
        if requested and not Path(requested).is_file():
            raise UserError(f"{requested}: no such model file")

    def scorer(self) -> Scorer:
        if self.rules_only:
            return rule_scorer(self.config)
        return load_scorer(self.config, self.model)

    def open(self, sink: JsonlSink | None = None,
             incident_sink: EventSink | None = None) -> tuple[Pipeline, Scorer]:
        """Load the scorer and build the pipeline (not started); returns (pipeline, scorer)."""
        scorer = self.scorer()
        try:
            pipeline = Pipeline(
                self.directory, self.config, scorer, sink=sink, incident_sink=incident_sink,
                keep_all=self.keep_all,
                state_path=self.state_path, from_start=self.from_start, since=self.since,
                feedback=open_feedback(self.config, scorer.threshold, create=self.create_labels),
            )
        except StateError as exc:  # locked by another watcher, read-only, damaged
            raise UserError(str(exc)) from None
        if self.on_open is not None:
            self.on_open()
        return pipeline, scorer

    @property
    def model_file(self) -> Path:
        return model_path(self.config, self.model)


def demo_config(config: Config, root: Path) -> Config:
    """The user's config with state, labels and retrained models kept in the demo's temporary
    directory (a first look must not touch the analyst's real store); dumps appear whole
    (atomic renames), so they need not settle long before they are read."""
    watch = dataclasses.replace(
        config.watch, state_db=str(root / "state.sqlite"), glob="nfcapd.*",
        settle_seconds=min(config.watch.settle_seconds, 0.5),
        poll_interval=min(config.watch.poll_interval, 0.5),
    )
    labels = dataclasses.replace(
        config.labels, db=str(root / "labels.sqlite"), model_dir=str(root / "models")
    )
    return dataclasses.replace(config, watch=watch, labels=labels)


@contextmanager
def demo_session(
    config: Config, *, corpus: str = "lab-dev", shape: str = "nfpcapd", interval: float = 3.0,
    model: str | None = None,
) -> Iterator[Session]:
    """Bundled sample dumps replayed as rotations into a temporary directory, watched from
    their first line; the directory (state, labels, models) is removed on exit."""
    dumps = sample_dumps(corpus, shape)
    with tempfile.TemporaryDirectory(prefix="flowtriage-demo-") as tmp:
        root = Path(tmp)
        directory = root / "dumps"
        directory.mkdir()
        replayer = Replayer(dumps, directory, interval=interval, staging=root / "staging")
        try:
            yield Session(
                directory, demo_config(config, root),
                subtitle=f"demo: {corpus}/{shape}, a rotation every {interval:g}s",
                model=model, from_start=True, state_path=root / "state.sqlite", temporary=True,
                # the first rotation as soon as the pipeline can read it
                on_open=replayer.start,
            )
        finally:
            replayer.stop()
