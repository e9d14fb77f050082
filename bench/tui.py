"""How fast the flows table answers keys and sorts with a million retained flows.

Runs the real app under Textual's headless driver (`run_test`, 80x24) over a snapshot of
N synthetic scored flows. A key press is timed from the press until a full frame has been
composed (every visible line drawn, the terminal byte stream encoded), posting the key event
directly (Pilot's press adds idle-detection sleeps that depend on machine load), as wall and
process CPU time.
A sort is timed from the key until the worker's new view is on screen. Baseline in the same run: polars sorting the same
key column alone (arg_sort), so the figures can be compared across machines.

    python bench/tui.py [--rows 1000000] [--repeat 30]

Targets (issue 5): key press redraw < 50 ms, sort < 0.5 s. Issue 15: incident updates < 100 ms
per rotation at a million retained flows: the engine's grouping of one rotation
(IncidentTracker.add, one tenth of the flows, with the incidents of the nine before open), and
the incidents screen from a new snapshot published to its view on screen; also Enter on an
incident (its flows filtered out of the million) to that view on screen.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
from textual import events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config.settings import Config  # noqa: E402
from engine.core.schema import SCORED_SCHEMA  # noqa: E402
from engine.detect.incidents import IncidentTracker  # noqa: E402
from engine.live.snapshot import Counters, Snapshot  # noqa: E402
from tui.app import FlowTriageApp  # noqa: E402
from tui.feed import SnapshotFeed  # noqa: E402
from tui.screens.incidents import IncidentFlowsScreen  # noqa: E402


def synthetic_flows(n: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    clients = rng.integers(0, 60_000, n)
    start = np.datetime64(datetime(2026, 11, 22, 8, 0, 0), "ms")
    ts = start + np.sort(rng.integers(0, 900_000, n)).astype("timedelta64[ms]")
    verdicts = np.array(["normal", "amplification", "scan", "tunnel", "zero_packet", "open_resolver", "dns_flood"])
    frame = pl.DataFrame(
        {
            "ts_first": ts,
            "ts_last": ts + rng.integers(0, 2_000, n).astype("timedelta64[ms]"),
            "duration": rng.random(n) * 2,
            "proto": np.where(rng.random(n) < 0.9, "UDP", "TCP"),
            "src_addr": [f"10.{c >> 8 & 255}.{c & 255}.{c % 200}" for c in clients.tolist()],
            "src_port": rng.integers(1024, 65535, n).astype(np.int32),
            "dst_addr": "10.0.0.53",
            "dst_port": np.full(n, 53, dtype=np.int32),
            "tcp_flags": "........",
            "tos": np.zeros(n, dtype=np.int16),
            "packets": rng.integers(1, 2000, n),
            "bytes": rng.integers(40, 1_000_000, n),
            "flows": np.ones(n, dtype=np.int32),
            "approx": np.zeros(n, dtype=bool),
            "file": "/dumps/nfcapd.202611220800.txt",
            "line": np.arange(2, n + 2),
            "score": rng.random(n),
            "verdict": verdicts[rng.integers(0, len(verdicts), n)],
            "reasons": "rule amplification; detector p99.7; neighbours amplification x5",
        }
    )
    frame = frame.select([pl.col(c).cast(t) for c, t in SCORED_SCHEMA.items()])
    return frame.with_columns(flow_id=pl.int_range(1, n + 1, dtype=pl.UInt64))


def with_attackers(flows: pl.DataFrame, attackers: int = 300) -> pl.DataFrame:
    """Flagged flows come from a few hundred attackers, one attack class each (as in real
    data), so incidents are attack episodes, not one per random client."""
    verdicts = ["amplification", "scan", "tunnel", "zero_packet", "open_resolver", "dns_flood"]
    who = (pl.col("flow_id") % attackers).cast(pl.Int64)
    flagged = pl.col("score") >= 0.5
    return flows.with_columns(
        src_addr=pl.when(flagged).then(pl.format("10.9.{}.{}", who // 256, who % 256)).otherwise(pl.col("src_addr")),
        dst_addr=pl.when(flagged).then(pl.format("10.8.{}.1", who % 256)).otherwise(pl.col("dst_addr")),
        verdict=pl.when(flagged).then(pl.lit(pl.Series(verdicts)).get(who % len(verdicts))).otherwise(pl.lit("normal")),
    )


def incidents_of(flows: pl.DataFrame, rotations: int = 10) -> tuple[pl.DataFrame, IncidentTracker, list[float]]:
    """Group the flows rotation by rotation (as the pipeline does); the time of each add()."""
    tracker = IncidentTracker(0.5)
    ids, times = [], []
    size = -(-flows.height // rotations)
    for start in range(0, flows.height, size):
        batch = flows.slice(start, size)
        t0 = time.perf_counter()
        found, _events = tracker.add(batch)
        tracker.table()
        times.append(time.perf_counter() - t0)
        ids.append(found)
    return flows.with_columns(pl.concat(ids)), tracker, times


async def measure_incidents(flows: pl.DataFrame) -> None:
    flows, tracker, adds = incidents_of(with_attackers(flows))
    stats("incidents: group one rotation (engine)", adds, 0.100)
    table = tracker.table()
    print(f"{'incidents':<38} {table.height:,} over {int(table['flows'].sum()):,} flagged flows")
    first = Snapshot(1, flows, pl.DataFrame(), Counters(files=1, flows=flows.height), incidents=table)
    feed = SnapshotFeed(first)
    app = FlowTriageApp(feed, Config(), subtitle="bench", start="incidents")
    async with app.run_test(size=(80, 24)) as pilot:
        while app.screen.table.view.version != 1:
            await pilot.pause()
            await app.workers.wait_for_complete()
        updates = []
        for version in range(2, 12):
            # a rotation: the same million flows, the incidents grown by it
            grown = table.with_columns(flows=pl.col("flows") + version, last_seen=pl.col("last_seen") + pl.duration(seconds=version))
            snapshot = Snapshot(version, flows, pl.DataFrame(), Counters(files=version, flows=flows.height),
                                incidents=grown)
            t0 = time.perf_counter()
            feed.publish(snapshot)
            app.apply_latest()
            while app.screen.table.view.version != version:
                await asyncio.sleep(0.001)
            app.screen._compositor.render_full_update().render_segments(app.console)
            updates.append(time.perf_counter() - t0)
        stats("incidents screen: snapshot to view", updates, 0.100)
        opened = []
        for _ in range(5):
            t0 = time.perf_counter()
            app.post_message(events.Key("enter", None))
            while not (isinstance(app.screen, IncidentFlowsScreen) and len(app.screen.table.view)):
                await asyncio.sleep(0.001)
            app.screen._compositor.render_full_update().render_segments(app.console)
            opened.append(time.perf_counter() - t0)
            app.pop_screen()
            await pilot.pause()
        stats("enter: an incident's flows on screen", opened, 0.5)


def stats(label: str, seconds: list[float], target: float) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label:<38} n={len(ms):>3}  median {statistics.median(ms):7.1f} ms  worst {max(ms):7.1f} ms"
        f"  target {target * 1000:.0f} ms  {'OK' if max(ms) < target * 1000 else 'OVER'}"
    )


async def measure(flows: pl.DataFrame, repeat: int) -> None:
    snapshot = Snapshot(1, flows, pl.DataFrame(), Counters(files=1, flows=flows.height))
    app = FlowTriageApp(SnapshotFeed(snapshot), Config(), subtitle="bench")

    async with app.run_test(size=(80, 24)) as pilot:
        async def until_shown(version_check) -> None:
            while True:
                await pilot.pause()
                await app.workers.wait_for_complete()
                await pilot.pause()
                if version_check():
                    return

        started = time.perf_counter()
        await until_shown(lambda: len(app.screen.table.view) == flows.height)
        print(f"{'first view (sort by score)':<38} {time.perf_counter() - started:7.3f} s")

        def frame() -> None:
            update = app.screen._compositor.render_full_update()
            update.render_segments(app.console)

        table = app.screen.table

        async def key(name: str) -> tuple[float, float]:
            """Key event posted -> binding -> action -> the follow-up messages -> a full frame."""
            before = table.cursor
            wall, cpu = time.perf_counter(), time.process_time()
            app.post_message(events.Key(name, None))
            while table.cursor == before:
                await asyncio.sleep(0)
            for _ in range(5):  # CursorMoved -> the reason line under the table
                await asyncio.sleep(0)
            frame()
            return time.perf_counter() - wall, time.process_time() - cpu

        frame()
        for name, label, count in (("down", "cursor down", repeat), ("pagedown", "page down", repeat),
                                   ("pageup", "page up", repeat), ("end", "end (the last row)", 1),
                                   ("home", "home", 1)):
            times = []
            for _ in range(count if count > 1 else 5):
                times.append(await key(name))
                if count == 1:  # end/home again need the cursor elsewhere first
                    await pilot.press("up" if name == "end" else "down")
            stats(f"key {label}: wall", [w for w, _ in times], 0.050)
            stats(f"key {label}: CPU", [c for _, c in times], 0.050)

        sorts: list[float] = []
        names = {"1": "time", "2": "score", "5": "source", "8": "bytes", "3": "verdict"}
        for column_key in ("1", "1", "2", "2", "5", "5", "8", "8", "3", "3"):  # each column both ways
            before = table.view
            t0 = time.perf_counter()
            app.post_message(events.Key(column_key, column_key))
            while table.view is before:
                await asyncio.sleep(0.001)
            frame()
            sorts.append(time.perf_counter() - t0)
            print(f"  sort by {names[column_key]:<8} {'desc' if app.screen.sort.descending else 'asc ':<5}"
                  f" {sorts[-1] * 1000:7.1f} ms")
        stats("sort (key to new view on screen)", sorts, 0.5)
        cursor_kept = table.cursor_key
        print(f"{'cursor stayed on flow_id':<38} {cursor_kept}")

    base = []
    for column in ("ts_first", "score", "src_addr", "bytes", "verdict"):
        t0 = time.perf_counter()
        flows.get_column(column).arg_sort(descending=True)
        base.append(time.perf_counter() - t0)
    stats("baseline: polars arg_sort alone", base, 0.5)
    print(f"{'ratio sort/baseline (median)':<38} {statistics.median(sorts) / statistics.median(base):7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--incidents-only", action="store_true", help="only the incident figures")
    args = parser.parse_args()
    t0 = time.perf_counter()
    flows = synthetic_flows(args.rows)
    print(f"{args.rows:,} synthetic scored flows built in {time.perf_counter() - t0:.1f} s "
          f"({flows.estimated_size('mb'):.0f} MB)")
    if not args.incidents_only:
        asyncio.run(measure(flows, args.repeat))
    asyncio.run(measure_incidents(flows))


if __name__ == "__main__":
    main()
