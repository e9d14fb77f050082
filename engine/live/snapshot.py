"""What the live pipeline publishes to its consumers (the TUI, tests): immutable snapshots.

A snapshot is built off the consumer's thread and handed over whole; consumers never see a
half-updated state and never lock. polars DataFrames are treated as immutable by convention:
nobody mutates a frame after it is published.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from engine.detect.incidents import INCIDENT_SCHEMA


def _no_incidents() -> pl.DataFrame:
    return pl.DataFrame(schema=INCIDENT_SCHEMA)


@dataclass(frozen=True)
class Counters:
    files: int = 0                  # dump files seen
    newest_file: str | None = None  # name of the newest dump read
    lag_seconds: float = 0.0        # now minus the mtime of the oldest dump with unread text; 0 = caught up
    flows: int = 0                  # flows scored since start
    dns_flows: int = 0              # of which in scope (DNS-relevant: given a DNS verdict)
    flows_per_second: float = 0.0   # recent scoring rate
    flagged: int = 0                # flows at or above the threshold since start
    skipped_lines: int = 0          # lines that were not flows (see messages)
    errors: int = 0                 # files that could not be read, and other faults
    model_version: str = ""
    restored_flows: int = 0         # flows of dumps read before a restart, shown again (not in `flows`)


@dataclass(frozen=True)
class Snapshot:
    version: int
    # Retained scored flows: the canonical columns, score/verdict/reasons, and `flow_id`
    # (UInt64, stable for the flow's lifetime: the cursor follows it across sorts and updates).
    flows: pl.DataFrame
    # Per-source aggregates (engine.detect.sources.summarize_sources).
    sources: pl.DataFrame
    counters: Counters = field(default_factory=Counters)
    # Recent human-readable messages: skipped lines with file:line and reason, read errors.
    messages: tuple[str, ...] = ()
    # The scorer's cut: a flow is flagged (and has an attack verdict) at score >= threshold.
    threshold: float = 0.5
    # The incidents of the retained window (engine.detect.incidents.INCIDENT_SCHEMA), most
    # severe and most recent first; each retained flagged flow names its own in `incident`.
    incidents: pl.DataFrame = field(default_factory=_no_incidents)
