"""Screenshots of the TUI for the README, taken from the app itself over the bundled samples.

    python scripts/tui_screenshots.py [--out docs] [--corpus lab-mixed-dev] [--shape nfpcapd]

Reads the bundled dumps, scores them with the configured scorer (the bundled model when there
is one, else the five rules), and saves SVG and PNG (rsvg-convert) screenshots at 80x24 of the
main screen (the incidents), an incident's flows, a drill-down, the sources screen and the filter
bar showing an error. The lab clocks
are replayed as they were; the directory names in the pictures are illustrative.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config.settings import load_config  # noqa: E402
from engine.detect.incidents import IncidentTracker  # noqa: E402
from engine.detect.scorer import Scorer  # noqa: E402
from engine.ingest import read_flows  # noqa: E402
from engine.live.replay import sample_dumps  # noqa: E402
from engine.live.snapshot import Counters, Snapshot  # noqa: E402
from engine.models.registry import load_scorer  # noqa: E402
from tui.app import FlowTriageApp  # noqa: E402
from tui.feed import SnapshotFeed  # noqa: E402


def score(flows: pl.DataFrame, config) -> tuple[pl.DataFrame, Scorer]:
    scorer = load_scorer(config)  # the model `watch` would use (the bundled one by default)
    return scorer.score(flows, detail=True), scorer  # with `why`, as the live pipeline keeps it


def with_incidents(scored: pl.DataFrame, threshold: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Incidents as the pipeline groups them: dump by dump, in rotation order."""
    tracker = IncidentTracker(threshold)
    parts = []
    for _, part in scored.group_by("file", maintain_order=True):
        ids, _events = tracker.add(part)
        parts.append(part.with_columns(ids))
    return pl.concat(parts), tracker.table()


def sources_of(scored: pl.DataFrame, threshold: float) -> pl.DataFrame:
    try:
        from engine.detect.sources import summarize_sources
    except ImportError:
        return pl.DataFrame()
    return summarize_sources(scored, threshold=threshold)


async def shoot(app: FlowTriageApp, out: Path, keys: list[str]) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        async def settle() -> None:
            for _ in range(3):
                await pilot.pause()
                await app.workers.wait_for_complete()
            await pilot.pause()

        await settle()
        app.save_screenshot("screenshot-main.svg", str(out))  # the incidents
        for key in keys:  # e.g. a row further down
            await pilot.press(key)
            await settle()
        await pilot.press("enter")
        await settle()
        app.save_screenshot("screenshot-incident-flows.svg", str(out))
        await pilot.press("enter")
        await settle()
        app.save_screenshot("screenshot-drilldown.svg", str(out))
        await pilot.press("pagedown")
        await settle()
        app.save_screenshot("screenshot-drilldown-context.svg", str(out))
        await pilot.press("q", "q", "tab")
        await settle()
        app.save_screenshot("screenshot-sources.svg", str(out))
        await pilot.press("q", "a", "slash", *"proto udp and port 53 and bytes >", "enter")
        await settle()
        app.save_screenshot("screenshot-filter-error.svg", str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--corpus", default="lab-dev")
    parser.add_argument("--shape", default="nfpcapd")
    parser.add_argument("--theme", default=None)
    parser.add_argument("--keys", default="",
                        help="keys pressed on the incidents screen before Enter (default: none, the top incident)")
    args = parser.parse_args()
    config = load_config(ROOT / "config.toml")
    if args.theme:
        import dataclasses

        config = dataclasses.replace(config, tui=dataclasses.replace(config.tui, theme=args.theme))
    dumps = sample_dumps(args.corpus, args.shape)
    flows, results = read_flows(dumps)
    flows = flows.with_columns(file=pl.col("file").str.replace(r"^.*/", "/var/flows/dumps/"))
    scored, scorer = score(flows, config)
    threshold = scorer.threshold
    scored, incidents = with_incidents(scored, threshold)
    retained = (
        scored.with_columns(flow_id=pl.int_range(1, scored.height + 1, dtype=pl.UInt64))
        .filter(pl.col("score") >= threshold)
    )
    counters = Counters(
        files=len(dumps), newest_file=dumps[-1].name, lag_seconds=1.2, flows=scored.height,
        flows_per_second=scored.height / 300, flagged=retained.height,
        skipped_lines=sum(len(r.skipped) for r in results), errors=0,
        model_version=scorer.version_,
    )
    snapshot = Snapshot(1, retained, sources_of(scored, threshold), counters, threshold=threshold,
                        incidents=incidents)
    app = FlowTriageApp(SnapshotFeed(snapshot, scorer=scorer), config, subtitle="watching /var/flows/dumps",
                        nfcapd_dir="/var/flows/nfcapd",
                        start="incidents")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(app, out, [k for k in args.keys.split(",") if k]))
    if shutil.which("rsvg-convert"):
        for svg in sorted(out.glob("screenshot-*.svg")):
            # rsvg-convert drops leading spaces of text runs unless told to preserve them
            text = svg.read_text().replace("<svg ", '<svg xml:space="preserve" ', 1)
            subprocess.run(["rsvg-convert", "-o", str(svg.with_suffix(".png"))], input=text.encode(), check=True)
    print("\n".join(str(p) for p in sorted(out.glob("screenshot-*"))))


if __name__ == "__main__":
    main()
