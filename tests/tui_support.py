"""Deterministic snapshots for the TUI tests: small hand-built flow frames with scores.

The flows imitate the lab corpora (a resolver 127.10.0.53, clients in 127.10.64.0/18, attack
verdicts from the five rules) so screens look like the real thing, but every value is fixed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from engine.core.schema import SCORED_SCHEMA
from engine.live.snapshot import Counters, Snapshot

T0 = datetime(2026, 11, 22, 8, 37, 0)
VERDICTS = ["amplification", "scan", "tunnel", "zero_packet", "open_resolver", "dns_flood", "normal"]


def make_flows(n: int = 60, *, start_id: int = 1, hostile: dict | None = None) -> pl.DataFrame:
    rows = []
    for i in range(n):
        verdict = VERDICTS[i % len(VERDICTS)]
        score = round(((i * 37) % 100) / 100, 2) if verdict == "normal" else round(0.5 + ((i * 13) % 50) / 100, 2)
        if verdict == "normal":
            score = min(score, 0.49)
        client = f"127.10.{64 + i % 5}.{10 + i % 7}"
        out = i % 2 == 0
        rows.append(
            {
                "ts_first": T0 + timedelta(milliseconds=250 * i),
                "ts_last": T0 + timedelta(milliseconds=250 * i + (i % 4) * 120),
                "duration": (i % 4) * 0.12,
                "proto": "TCP" if verdict == "scan" else "UDP",
                "src_addr": client if out else "127.10.0.53",
                "src_port": 40000 + i if out else 53,
                "dst_addr": "127.10.0.53" if out else client,
                "dst_port": 53 if out else 40000 + i,
                "tcp_flags": "......S." if verdict == "scan" else "........",
                "tos": 0,
                "packets": 1 + (i * 7) % 40,
                "bytes": 58 if verdict == "scan" else 64 + (i * 97) % 3000,
                "flows": 1,
                "approx": False,
                "file": "/dumps/nfcapd.202611220837.txt",
                "line": i + 2,
                "score": score,
                "verdict": verdict,
                "reasons": f"rule {verdict}; detector p{90 + i % 10}" if verdict != "normal" else "detector p42",
            }
        )
    frame = pl.DataFrame(rows, schema=SCORED_SCHEMA)
    if hostile:
        frame = pl.concat([frame, pl.DataFrame([{**rows[0], **hostile}], schema=SCORED_SCHEMA)])
    return frame.with_columns(flow_id=pl.int_range(start_id, start_id + frame.height, dtype=pl.UInt64))


def make_sources(flows: pl.DataFrame, threshold: float = 0.5) -> pl.DataFrame:
    """Per-source aggregates in the shape of engine.detect.sources.SOURCE_SCHEMA (until that lands)."""
    return (
        flows.sort("ts_first")
        .group_by("src_addr", maintain_order=True)
        .agg(
            flows=pl.len(),
            packets=pl.col("packets").sum(),
            bytes=pl.col("bytes").sum(),
            peers=pl.col("dst_addr").n_unique(),
            dst_ports=pl.col("dst_port").n_unique(),
            suspicious=(pl.col("score") >= threshold).sum(),
            suspicious_share=(pl.col("score") >= threshold).mean(),
            top_verdict=pl.col("verdict").sort_by(["score", "verdict"], descending=True).first(),
            max_score=pl.col("score").max(),
            first_seen=pl.col("ts_first").min(),
            last_seen=pl.col("ts_last").max(),
            activity=pl.col("ts_first").dt.truncate("1s").value_counts(sort=False).struct.field("count"),
        )
        .sort("src_addr")
    )


def make_snapshot(flows: pl.DataFrame | None = None, version: int = 1, **counters) -> Snapshot:
    flows = make_flows() if flows is None else flows
    base = dict(
        files=3, newest_file="nfcapd.202611220837.txt", lag_seconds=1.5, flows=flows.height,
        flows_per_second=1234.0, flagged=int((flows["score"] >= 0.5).sum()), skipped_lines=2,
        errors=0, model_version="default-1",
    )
    base.update(counters)
    return Snapshot(version, flows, make_sources(flows), Counters(**base))


def screen_text(app) -> str:
    """What the terminal shows now, as plain text lines (the compositor's full frame)."""
    return "\n".join("".join(segment.text for segment in line) for line in screen_lines(app))


def screen_lines(app) -> list[list]:
    """The full frame as lines of rich Segments (with their styles and meta)."""
    update = app.screen._compositor.render_full_update()
    return [[segment for strip in line for segment in strip] for line in update.strips]


def terminal_output(app) -> str:
    """The exact text the driver would write to the terminal for a full redraw."""
    return app.screen._compositor.render_full_update().render_segments(app.console)


def widget_text(widget, width: int = 78) -> str:
    """A Static's content rendered to plain text at `width` (all of it, not only what is on screen)."""
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(widget.content)
    return console.file.getvalue()


def with_incidents(snapshot: Snapshot, threshold: float = 0.5) -> Snapshot:
    """The snapshot as the live pipeline publishes it: flagged flows grouped into incidents
    (engine.detect.incidents), each flow naming its own."""
    import dataclasses

    from engine.detect.incidents import IncidentTracker

    tracker = IncidentTracker(threshold)
    ids, _ = tracker.add(snapshot.flows)
    return dataclasses.replace(snapshot, flows=snapshot.flows.with_columns(ids), incidents=tracker.table())
