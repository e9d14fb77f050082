"""The analyst's feedback keys: the bindings the flows table and the drill-down share, and the
small modals behind them (label picker with a confirmed "new class", note input, confirm).

The work itself (durable writes, re-applying labels) is tui.labels.LabelController's (and
retraining tui.models.ModelController's); the screens only name the flow under the cursor.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from engine.config.settings import CLASS_NAME
from engine.core.sanitize import sanitize
from tui import keys

NEW_CLASS = "\0new"  # the picker's "new class" option id; never a valid class name
NOTE_MAX = 500


class FeedbackActions:
    """Mixin for a screen with a flow under the cursor (`feedback_row()`)."""

    def feedback_row(self) -> dict | None:
        raise NotImplementedError

    def action_label_normal(self) -> None:
        self.app.labels.label(self.feedback_row(), "normal")

    def action_label_pick(self) -> None:
        self.app.labels.pick(self.feedback_row())

    def action_label_undo(self) -> None:
        self.app.labels.undo()

    def action_label_note(self) -> None:
        self.app.labels.note(self.feedback_row())


class _Modal(ModalScreen):
    DEFAULT_CSS = """
    _Modal, LabelPicker, NoteInput, Confirm { align: center middle; }
    #box { width: 60; max-width: 100%; height: auto; max-height: 22; border: round $accent;
           background: $surface; padding: 0 1; }
    #box OptionList { height: auto; max-height: 14; }
    #box .hint { color: $text-muted; }
    #box .error { color: $error; }
    """
    BINDINGS = keys.MODAL

    def action_cancel(self) -> None:
        self.dismiss(None)


class LabelPicker(_Modal):
    """The label vocabulary (without `anomaly`) and "new class"; dismisses with the chosen
    class, or ("new", name) for a typed new class (still to be confirmed), or None."""

    def __init__(self, classes: list[str], flow: str) -> None:
        super().__init__()
        self.choices = classes
        self.flow = flow

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(Text("Label " + self.flow, no_wrap=True, overflow="ellipsis", style="bold"))
            options = [
                Option(Text.assemble((f"{i} " if i <= 9 else "  ", "bold"), sanitize(c)), id=c)
                for i, c in enumerate(self.choices, start=1)
            ]
            options.append(Option(Text("+ new class\u2026", style="italic"), id=NEW_CLASS))
            yield OptionList(*options, id="classes")
            yield Input(placeholder="new class: lower-case letters, digits, _", id="new-class",
                        max_length=32, classes="hidden")
            yield Static("", id="error", classes="error")
            yield Static("1-9 or Enter: choose  Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#new-class", Input).display = False
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def on_key(self, event) -> None:
        """1-9 choose the class with that number (while the list, not the name field, has focus)."""
        if event.character and event.character in "123456789" and isinstance(self.focused, OptionList):
            index = int(event.character) - 1
            if index < len(self.choices):
                event.stop()
                self.dismiss(self.choices[index])

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == NEW_CLASS:
            field = self.query_one("#new-class", Input)
            field.display = True
            field.focus()
        else:
            self.dismiss(event.option.id)

    @on(Input.Submitted, "#new-class")
    def _typed(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if name in self.choices:
            self.dismiss(name)
        elif not CLASS_NAME.match(name):
            self.query_one("#error", Static).update(Text(
                "a class name is lower-case letters, digits and _, starting with a letter "
                "(at most 32)"
            ))
        else:
            self.dismiss(("new", name))


class NoteInput(_Modal):
    """A one-line note; dismisses with the text or None."""

    def __init__(self, flow: str) -> None:
        super().__init__()
        self.flow = flow

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(Text("Note on " + self.flow, no_wrap=True, overflow="ellipsis", style="bold"))
            yield Input(placeholder="what you saw", max_length=NOTE_MAX, id="note")
            yield Static("Enter: save  Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value if event.value.strip() else None)


class Confirm(_Modal):
    """A yes/no question; dismisses with True or False."""

    BINDINGS = keys.CONFIRM

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(Text(self.question))
            yield Static("y: yes  n/Esc: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
