"""The status line: the pipeline's counters as the analyst reads them."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from engine.core.sanitize import sanitize
from engine.live.snapshot import Snapshot
from tui import format as fmt


def status_line(snapshot: Snapshot | None, incoming_snapshot: Snapshot | None, activity: Text,
                feed_error: str | None) -> Text:
    """The status line under every table: what the pipeline did (files, lag, rate, flagged,
    skipped, errors, model) and the last activity (saved / retraining / errors)."""
    counters = snapshot.counters if snapshot else None
    incoming = incoming_snapshot.counters if incoming_snapshot else counters
    text = Text(no_wrap=True, overflow="ellipsis")
    if feed_error:
        text.append(" STOPPED ", style="bold reverse red")
    if counters is None:
        text.append(" no data yet", style="dim")
        return text
    shown = incoming if incoming is not None else counters

    def item(label: str, value: str, style: str = "", *, after: bool = False) -> None:
        if len(text):
            text.append("  ")
        if not after:
            text.append(f"{label} ", style="dim")
        text.append(value, style=style or "bold")
        if after:
            text.append(f" {label}", style="dim")

    text.append(" ")
    if activity:
        text.append_text(activity)
        text.append("  ")
    item("files", f"{shown.files:,}", after=True)
    item("lag", f"{fmt.duration(shown.lag_seconds).rstrip('s')}s")
    item("fl/s", fmt.compact(shown.flows_per_second), after=True)
    item("flagged", f"{shown.flagged:,}", "bold red" if shown.flagged else "", after=True)
    if shown.restored_flows:  # a restart: the view was filled again from dumps already read
        item("restored", f"{shown.restored_flows:,}", "bold yellow", after=True)
    item("skip", f"{shown.skipped_lines:,}", "bold yellow" if shown.skipped_lines else "", after=True)
    item("err", f"{shown.errors:,}", "bold red" if shown.errors else "", after=True)
    item("model", sanitize(shown.model_version) or "-")
    if 0 < shown.dns_flows < shown.flows:  # scope at work: how much of it was DNS (last: 80 cols cut it)
        item("dns", f"{fmt.compact(shown.dns_flows)}/{fmt.compact(shown.flows)}", after=True)
    text.append("  ")
    text.append(sanitize(Path(shown.newest_file).name) if shown.newest_file else "", style="dim")
    return text
