"""FlowScreen: one flow explained: every field, why it was flagged, its neighbours in the
window, and the nfdump command that shows it from the binary files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.core.sanitize import sanitize
from engine.core.schema import FLOW_COLUMNS
from engine.detect.explain import probabilities, sentences
from engine.live.snapshot import Snapshot
from tui import format as fmt
from tui import keys
from tui.feedback import FeedbackActions
from tui.messages import Explained
from tui.nfdump import nfdump_command

if TYPE_CHECKING:
    from tui.app import FlowTriageApp

NEIGHBOURS_SHOWN = 8


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return fmt.stamp(value)
    return sanitize(value)


def _trim(text: Text) -> Text:
    text.rstrip()
    return text


def flow_line(row: dict) -> Text:
    """One flow in a line: time, score, verdict, endpoints, packets, bytes."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(fmt.clock(row.get("ts_first")) + " ", style="dim")
    text.append(fmt.score_cell(row.get("score")) + " ")
    text.append(fmt.fit(sanitize(row.get("verdict")), 13) + " ")
    text.append(f"{sanitize(row.get('proto'))} ")
    text.append(fmt.endpoint(row.get("src_addr"), row.get("src_port"), row.get("proto"), words=True))
    text.append(" \u2192 ", style="dim")
    text.append(fmt.endpoint(row.get("dst_addr"), row.get("dst_port"), row.get("proto"), words=True))
    text.append(f"  {fmt.compact(row.get('packets'))} pkt {fmt.compact(row.get('bytes'))} B", style="dim")
    return text


def flows_grid(rows: list[dict]) -> Table:
    """Flows one per line in aligned columns; long endpoints are cut, lines never wrap."""
    grid = Table.grid(padding=(0, 1), expand=False)
    grid.add_column(no_wrap=True, style="dim")  # time
    grid.add_column(no_wrap=True)  # score
    grid.add_column(no_wrap=True, max_width=10, overflow="ellipsis")  # verdict
    grid.add_column(no_wrap=True)  # proto
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)  # src
    grid.add_column(no_wrap=True, style="dim")  # arrow
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)  # dst
    grid.add_column(no_wrap=True, justify="right")  # packets
    grid.add_column(no_wrap=True, justify="right")  # bytes
    for row in rows:
        grid.add_row(
            Text(" " + fmt.clock(row.get("ts_first"))), Text(fmt.score_cell(row.get("score"))),
            Text(sanitize(row.get("verdict"))), Text(sanitize(row.get("proto"))),
            Text(fmt.endpoint(row.get("src_addr"), row.get("src_port"), row.get("proto"))), Text("\u2192"),
            Text(fmt.endpoint(row.get("dst_addr"), row.get("dst_port"), row.get("proto"))),
            Text(fmt.compact(row.get("packets")) + "p"), Text(fmt.compact(row.get("bytes")) + "B"),
        )
    return grid


def render_detail(detail: object, indent: int = 0) -> Text:
    """Any explanation shape as inert text (keys and values sanitized)."""
    text = Text()
    pad = "  " * indent
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(value, dict | list | tuple) and value:
                text.append(f"{pad}{sanitize(key)}:\n", style="bold")
                text.append_text(render_detail(value, indent + 1))
            else:
                text.append(f"{pad}{sanitize(key)}: ", style="bold")
                text.append(_value(value) + "\n")
    elif isinstance(detail, list | tuple):
        for item in detail:
            if isinstance(item, dict):
                text.append(pad + "\u2022 " + ", ".join(f"{sanitize(k)}={_value(v)}" for k, v in item.items()) + "\n")
            else:
                text.append(pad + "\u2022 " + _value(item) + "\n")
    else:
        text.append(pad + _value(detail) + "\n")
    return text


_SCOPE_TEXT = {
    "filter": "DNS-relevant ([scope] filter)",
    "icmp-error": "DNS-relevant: an ICMP error between hosts that exchange DNS",
    "prober": "DNS-relevant: a flow of a source that probes port 53",
    "out": "out of scope: not DNS-relevant, no DNS verdict (read and used as context only)",
}


def render_explanation(detail: dict, *, recomputed: bool = False) -> tuple[Group, Group | None]:
    """engine.detect.detector.Detector.explain()'s dict as (the verdict, rules fired, class probabilities
    with bars, nearest labelled neighbours, unknown keys generically; the features).

    `recomputed`: the flow's verdict and probabilities from scoring time are shown above it,
    so a recomputation (on the window context kept now) shows neither, only what scoring
    did not keep: features and nearest training flows."""
    parts: list = []
    head = Text()
    if recomputed:
        head.append("Features and nearest training flows", style="bold underline")
        head.append(" (recomputed now: the window context is still kept)\n", style="dim")
        detail = {k: v for k, v in detail.items()
                  if k not in ("verdict", "score", "probabilities", "outlier_percentile", "outlier")}
    else:
        head.append("Detector\n", style="bold underline")
    if "verdict" in detail or "score" in detail:
        head.append(f"  verdict {sanitize(detail.get('verdict'))}  score {_value(detail.get('score'))}")
    if detail.get("outlier_percentile") is not None:
        head.append(f"  outlier percentile {float(detail['outlier_percentile']):.1f}")
        if detail.get("outlier"):
            head.append(f" ({sanitize(detail['outlier'])})", style="dim")
    head.append("\n")
    scope = detail.get("scope")
    if scope is not None:
        head.append("  scope: ", style="bold")
        head.append(_SCOPE_TEXT.get(str(scope), sanitize(scope)) + "\n", style="dim" if scope == "out" else "")
    if int(detail.get("sampling") or 1) > 1:
        head.append(f"  sampled export 1:{int(detail['sampling'])}: features use counts divided back\n", style="dim")
    rules = detail.get("rules")
    head.append("  rules fired: ", style="bold")
    head.append((", ".join(sanitize(r) for r in rules) if rules else "none") + "\n")
    probabilities = detail.get("probabilities") or {}
    if probabilities:
        head.append("  class probabilities\n", style="bold")
        for name, p in sorted(probabilities.items(), key=lambda kv: -float(kv[1])):
            head.append(f"    {fmt.fit(sanitize(name), 14)} {float(p):5.2f} ")
            head.append(fmt.bar(float(p), 20) + "\n", style="bold" if float(p) >= 0.5 else "dim")
    neighbours = detail.get("neighbours") or []
    if neighbours:
        head.append("  nearest labelled training flows\n", style="bold")
        for n in neighbours:
            head.append(f"    \u2022 {sanitize(n.get('label'))}", style="bold")
            rest = ", ".join(f"{sanitize(k)} {_value(v)}" for k, v in n.items() if k != "label")
            head.append(f"  {rest}\n", style="dim")
    parts.append(_trim(head))
    features = detail.get("features") or {}
    if features:
        grid = Table.grid(padding=(0, 1), expand=True)
        for _ in range(2):
            grid.add_column(style="bold", no_wrap=True, overflow="ellipsis", ratio=2)
            grid.add_column(no_wrap=True, ratio=1)
        items = list(features.items())
        for i in range(0, len(items), 2):
            cells: list[Text] = []
            for name, value in items[i : i + 2]:
                cells += [Text(sanitize(name)), Text(_value(value))]
            grid.add_row(*cells)
        feature_part = Group(Text("Features (with window context)", style="bold underline"), grid)
    else:
        feature_part = None
    known = {"flow", "score", "verdict", "outlier_percentile", "outlier", "rules", "probabilities", "neighbours",
             "features", "scope", "sampling", "note"}
    other = {k: v for k, v in detail.items() if k not in known}
    if other:
        parts.append(_trim(render_detail(other, indent=1)))
    return Group(*parts), feature_part


class FlowScreen(FeedbackActions, Screen):
    BINDINGS = keys.FLOW_DETAIL

    app: FlowTriageApp

    def __init__(self, row: dict, snapshot: Snapshot | None) -> None:
        super().__init__()
        self.row = {k: v for k, v in row.items() if not k.startswith("_")}
        self.snapshot = snapshot
        self.command = ""

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="title")
        with VerticalScroll(id="detail"):
            yield Static(_trim(self._why()), id="why")
            yield Static(Text("detector: \u2026", style="dim"), id="explain")
            yield Static(self._neighbours(), id="neighbours")
            yield Static(_trim(self._nfdump()), id="nfdump")
            yield Static(self._fields(), id="fields")
            yield Static(id="features")
        yield Static(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.view_changed()
        self.query_one(VerticalScroll).focus()
        explain = self.query_one("#explain", Static)
        if self.app.current_explainer() is None:
            explain.update(Text("detector detail: not available (no model loaded)", style="dim"))
        elif self.row.get("why") and not self.app.models.in_context(self.row):
            # Recomputing now, without the flows of this flow's windows, would give other
            # features and maybe another verdict: say what is missing instead.
            explain.update(Text(
                "Features and nearest training flows: not shown. They need this flow's window "
                "context (the flows around it), which is kept only for the last minute of flow "
                "time; the verdict and the reasons above are from scoring time.", style="dim"))
        else:
            self._explain()

    # ---- sections ----------------------------------------------------------------------

    def _title(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" flow ", style="bold reverse")
        text.append(" ")
        text.append_text(flow_line(self.row))
        return text

    def _fields(self) -> Group:
        """Every field of the row (canonical columns, score, then any features), two per line."""
        canonical = [c for c in FLOW_COLUMNS if c in self.row]
        extra = [c for c in self.row if c not in FLOW_COLUMNS and c not in ("reasons", "why")]
        names = canonical + extra
        grid = Table.grid(padding=(0, 1), expand=True)
        for _ in range(2):
            grid.add_column(style="bold", no_wrap=True)
            grid.add_column(ratio=1, overflow="fold")
        for i in range(0, len(names), 2):
            cells: list[Text] = []
            for name in names[i : i + 2]:
                cells += [Text(sanitize(name)), Text(_value(self.row[name]))]
            grid.add_row(*cells)
        return Group(Text("Flow", style="bold underline"), grid)

    def _why(self) -> Text:
        text = Text()
        text.append("Why\n", style="bold underline")
        why = self.row.get("why")
        if why:  # kept from scoring time (engine.detect.explain): the verdict's own evidence
            chances = ", ".join(f"{sanitize(c)} {p:.2f}" for c, p in probabilities(why).items())
            text.append(f"  {sanitize(self.row.get('verdict'))}, score {float(self.row.get('score') or 0):.2f}",
                        style="bold")
            text.append(f" as scored ({chances})\n", style="dim")
            for sentence in sentences(why):
                text.append(f"  \u2022 {sanitize(sentence)}\n")
            text.append("  reasons:\n", style="dim")
        reasons = sanitize(self.row.get("reasons"))
        for part in [p.strip() for p in reasons.split(";") if p.strip()] or ["(no reason given)"]:
            text.append(f"  \u2022 {part}\n")
        return text

    def _group(self, title: str, flows: pl.DataFrame, total: int) -> list:
        parts: list = [Text(f"{title} ({total:,} in the window)", style="bold underline")]
        if flows.height:
            parts.append(flows_grid(flows.rows(named=True)))
        if total > flows.height:
            parts.append(Text(f"  \u2026 {total - flows.height:,} more", style="dim"))
        return parts

    def _neighbours(self) -> Group:
        if self.snapshot is None or "src_addr" not in self.snapshot.flows.columns:
            return Group()
        flows = self.snapshot.flows
        src, dst = self.row.get("src_addr"), self.row.get("dst_addr")
        me = pl.col("flow_id") != self.row.get("flow_id")
        same_source = flows.filter(me & (pl.col("src_addr") == src))
        pair = ((pl.col("src_addr") == src) & (pl.col("dst_addr") == dst)) | (
            (pl.col("src_addr") == dst) & (pl.col("dst_addr") == src)
        )
        same_pair = flows.filter(me & pair)
        top = lambda frame: frame.sort("score", descending=True).head(NEIGHBOURS_SHOWN)  # noqa: E731
        ctx = flows.filter(pl.col("src_addr") == src).select(
            flows=pl.len(),
            peers=pl.col("dst_addr").n_unique(),
            ports=pl.col("dst_port").n_unique(),
            bytes=pl.col("bytes").sum(),
            first=pl.col("ts_first").min(),
            last=pl.col("ts_last").max(),
        ).row(0, named=True)
        head = Text()
        head.append("Window context\n", style="bold underline")
        head.append(
            f"  source {sanitize(src)}: {ctx['flows']:,} retained flows, {ctx['peers']:,} peers, "
            f"{ctx['ports']:,} ports, {fmt.compact(ctx['bytes'])} B, "
            f"{fmt.clock(ctx['first'])}\u2013{fmt.clock(ctx['last'])}"
        )
        return Group(
            head,
            *self._group("Same source", top(same_source), same_source.height),
            *self._group("Same pair", top(same_pair), same_pair.height),
        )

    def _nfdump(self) -> Text:
        text = Text()
        text.append("Binary files\n", style="bold underline")
        directory = self.app.nfcapd_dir or str(Path(str(self.row.get("file") or ".")).parent)
        try:
            self.command = nfdump_command(self.row, directory)
        except ValueError as exc:
            text.append(f"  no nfdump command: {exc}\n", style="dim")
            return text
        text.append("  " + self.command + "\n")
        text.append("  (y copies it; -R is the directory of the nfcapd files)\n", style="dim")
        return text

    # ---- the detector's explanation, off the UI thread ---------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="explain")
    def _explain(self) -> None:
        explainer = self.app.current_explainer()
        try:
            flows = self.snapshot.flows if self.snapshot is not None else None
            one = flows.filter(pl.col("flow_id") == self.row.get("flow_id")) if flows is not None else None
            if one is None or one.height == 0:
                one = pl.DataFrame([self.row])
            detail = explainer(one, flows)
            self.post_message(Explained(detail[0] if detail else None))
        except Exception as exc:  # the detail view must not take the app down
            self.post_message(Explained(None, f"{type(exc).__name__}: {exc}"))

    def on_explained(self, message: Explained) -> None:
        widget = self.query_one("#explain", Static)
        if message.error:
            widget.update(Text(f"Detector: could not explain: {sanitize(message.error)}", style="dim"))
        elif not message.detail:
            widget.update(Text("Detector: (no detail)", style="dim"))
        elif isinstance(message.detail, dict):
            head, features = render_explanation(message.detail, recomputed=bool(self.row.get("why")))
            widget.update(head)
            if features is not None:
                self.query_one("#features", Static).update(features)
        else:
            widget.update(_trim(render_detail(message.detail)))

    # ---- analysts' feedback ------------------------------------------------------------

    def feedback_row(self) -> dict | None:
        return self.row

    def view_changed(self) -> None:
        """The status line: what the last label, note or retrain did."""
        self.query_one("#status", Static).update(self.app.activity)

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        """A newer snapshot: this flow's verdict and reasons as they are now (a label)."""
        if snapshot is None or "flow_id" not in snapshot.flows.columns:
            return
        found = snapshot.flows.filter(pl.col("flow_id") == self.row.get("flow_id"))
        if found.height == 0:
            return
        row = found.row(0, named=True)
        if (row.get("verdict"), row.get("reasons")) == (self.row.get("verdict"), self.row.get("reasons")):
            return
        self.row = row
        self.query_one("#title", Static).update(self._title())
        self.query_one("#why", Static).update(_trim(self._why()))

    # ---- actions -----------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_copy(self, column: str) -> None:
        self.app.copy_address(self.row.get(column))

    def action_copy_command(self) -> None:
        if self.command:
            self.app.copy_to_clipboard(self.command)
            self.notify("nfdump command copied", markup=False)

    def action_scroll(self, direction: str) -> None:
        scroll = self.query_one(VerticalScroll)
        if direction == "down":
            scroll.scroll_down(animate=False)
        else:
            scroll.scroll_up(animate=False)
