"""LabelController: the analyst's labels and notes, from a key press to a durable store write
and the labels applied again on screen.

Writes run one at a time, in key order, on a writer thread; the status line says "saved" only
after the append returned (a label survives a kill -9 right after). The writer thread only
posts messages (tui.messages.Saved, Reapplied); the app updates the widgets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import polars as pl

from engine.core.sanitize import sanitize
from engine.core.schema import ANOMALY
from engine.feedback.suppress import Feedback
from tui.feedback import Confirm, LabelPicker, NoteInput
from tui.messages import Reapplied, Saved

if TYPE_CHECKING:
    from tui.app import FlowTriageApp


class LabelController:
    def __init__(self, app: FlowTriageApp, feedback: Feedback | None = None) -> None:
        self.app = app
        # Given (tests, screenshots): the giver's to close. Otherwise the started pipeline's.
        self._given = feedback
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowtriage-labels")

    @property
    def feedback(self) -> Feedback | None:
        if self._given is not None:
            return self._given
        pipeline = self.app.feed.pipeline
        return pipeline.feedback if pipeline is not None else None

    def drain(self) -> None:
        """Wait for the label being written: it is on disk before the app exits."""
        self._writer.shutdown(wait=True)

    def close(self) -> None:
        """Close the pipeline's label store (after the feed stopped); a given one stays open."""
        pipeline = self.app.feed.pipeline
        if self._given is None and pipeline is not None and pipeline.feedback is not None:
            pipeline.feedback.store.close()

    def model_version(self) -> str | None:
        scorer = self.app.feed.scorer
        return scorer.version_ if scorer is not None else None

    def full_row(self, row: dict) -> dict:
        """The snapshot's whole row for a table row (the table keeps only what it shows; a
        label needs the flow key, provenance, vector key and the model's own verdict)."""
        snapshot = self.app.snapshot
        flows = snapshot.flows if snapshot is not None else None
        if flows is not None and "flow_id" in flows.columns and row.get("flow_id") is not None:
            found = flows.filter(pl.col("flow_id") == row["flow_id"])
            if found.height:
                return found.row(0, named=True)
        return {k: v for k, v in row.items() if not k.startswith("_")}

    def _ready(self, row: dict | None = None, *, need_row: bool = True) -> Feedback | None:
        feedback = self.feedback
        if feedback is None:
            self.app.notify("Labels are not available yet (the pipeline is starting)",
                            severity="warning", markup=False)
        elif need_row and row is None:
            self.app.notify("No flow under the cursor", severity="warning", markup=False)
            return None
        return feedback

    # ---- the keys ----------------------------------------------------------------------

    def label(self, row: dict | None, label: str) -> None:
        """`n` (label "normal") and `l`'s choice: durable before the UI says "saved"."""
        feedback = self._ready(row)
        if feedback is None or row is None:
            return
        full, version = self.full_row(row), self.model_version()
        self.app.set_activity(f"saving {label}…", "bold yellow")

        def write() -> str:
            event = feedback.label(full, label, model_version=version)
            return f"saved: {label} ({event.scope}) #{event.id}"

        self.submit(write)

    def pick(self, row: dict | None) -> None:
        """`l`: the vocabulary in a picker; a new class is confirmed before it is added."""
        feedback = self._ready(row)
        if feedback is None or row is None:
            return
        classes = [c for c in feedback.store.vocabulary() if c != ANOMALY]
        full = self.full_row(row)
        what = f"{full.get('src_addr')}:{full.get('src_port')} → {full.get('dst_addr')}:{full.get('dst_port')}"

        def chosen(answer: str | tuple[str, str] | None) -> None:
            if answer is None:
                return
            if isinstance(answer, tuple):
                name = answer[1]

                def confirmed(yes: bool | None) -> None:
                    if yes:
                        self._add_class_and_label(feedback, full, name)

                self.app.push_screen(Confirm(
                    f"Add the class '{name}' to the vocabulary of {feedback.store.path.name} "
                    "(every analyst of this store sees it) and label the flow with it?"
                ), confirmed)
                return
            self.label(full, answer)

        self.app.push_screen(LabelPicker(classes, sanitize(what)), chosen)

    def _add_class_and_label(self, feedback: Feedback, full: dict, name: str) -> None:
        version = self.model_version()
        self.app.set_activity(f"saving {name}…", "bold yellow")

        def write() -> str:
            feedback.store.add_class(name)
            event = feedback.label(full, name, model_version=version)
            return f"saved: new class {name}; {name} ({event.scope}) #{event.id}"

        self.submit(write)

    def label_incident(self, incident: dict | None, label: str | None = None) -> None:
        """`n` / `l` on the incidents screen: one label for every retained flow of the incident,
        after a yes that names how many; one transaction, "saved" once it is on disk."""
        feedback = self._ready(incident)
        if feedback is None or incident is None:
            return
        snapshot = self.app.snapshot
        flows = (snapshot.flows.filter(pl.col("incident") == incident.get("incident"))
                 if snapshot is not None and "incident" in snapshot.flows.columns else None)
        if flows is None or flows.height == 0:
            self.app.notify("No retained flow of this incident to label", severity="warning", markup=False)
            return
        what = f"{incident.get('class')}: {incident.get('summary')}"

        def confirmed_with(name: str) -> None:
            def confirmed(yes: bool | None) -> None:
                if not yes:
                    return
                version = self.model_version()
                self.app.set_activity(f"saving {name} on {flows.height:,} flows…", "bold yellow")

                def write() -> str:
                    frame = flows.with_columns(label=pl.lit(name), model_version=pl.lit(version))
                    count = feedback.store.add_frame(frame, scope="flow")
                    return f"saved: {name} on {count:,} flows of incident {incident.get('incident')}"

                self.submit(write)

            self.app.push_screen(Confirm(
                f"Label the {flows.height:,} retained flows of this incident ({what}) {name}? "
                "(u undoes one flow's label at a time)"), confirmed)

        if label is not None:
            confirmed_with(label)
            return
        classes = [c for c in feedback.store.vocabulary() if c != ANOMALY]

        def chosen(answer: str | tuple[str, str] | None) -> None:
            if isinstance(answer, str):
                confirmed_with(answer)

        self.app.push_screen(LabelPicker(classes, sanitize(what)), chosen)

    def undo(self) -> None:
        """`u`: this analyst's latest label or note is cancelled (an undo event)."""
        feedback = self._ready(need_row=False)
        if feedback is None:
            return

        def write() -> str:
            event = feedback.undo()
            return "nothing to undo" if event is None else f"saved: undid #{event.target}"

        self.submit(write)

    def note(self, row: dict | None) -> None:
        """`N`: a note on the flow (stored as typed, always shown inert)."""
        feedback = self._ready(row)
        if feedback is None or row is None:
            return
        full = self.full_row(row)

        def typed(text: str | None) -> None:
            if not text:
                return

            def write() -> str:
                event = feedback.note(full, text)
                return f"saved: note #{event.id}: {text}"

            self.submit(write)

        self.app.push_screen(NoteInput(sanitize(f"{full.get('src_addr')} → {full.get('dst_addr')}")), typed)

    # ---- the writer thread -------------------------------------------------------------

    def submit(self, write: Callable[[], str]) -> None:
        """Run `write` (a label store append returning what to say) on the writer thread; the
        UI says it only after the append returned, then the labels are applied again."""
        app = self.app

        def job() -> None:
            try:
                said = write()
            except Exception as exc:  # noqa: BLE001 - a refused label is the analyst's to fix
                app.post_message(Saved(f"not saved: {exc}", error=True))
                return
            app.post_message(Saved(said))
            try:
                feedback = self.feedback
                assert feedback is not None  # write() above used it
                app.feed.reapply(feedback)
                shown = app.snapshot
                paused_view = None
                if app.paused and shown is not None:
                    paused_view = dataclasses.replace(shown, flows=feedback.apply(shown.flows))
            except Exception as exc:  # noqa: BLE001
                app.post_message(Saved(f"saved, but not re-applied: {exc}", error=True))
                return
            app.post_message(Reapplied(paused_view))

        self._writer.submit(job)
