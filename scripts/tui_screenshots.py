"""Screenshots of the TUI for the README, taken from the app itself over the bundled samples.

    python scripts/tui_screenshots.py [--out docs] [--corpus lab-mixed-dev] [--shape nfpcapd]

Reads the bundled dumps, scores them with the configured scorer (the bundled model when there
is one, else the five rules), and saves SVG and PNG (rsvg-convert) screenshots at 80x24 of the
main screen, a drill-down, the sources screen and the filter bar showing an error. The lab clocks
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
from engine.ingest import read_flows  # noqa: E402
from engine.live.replay import sample_dumps  # noqa: E402
from engine.live.snapshot import Counters, Snapshot  # noqa: E402
from tui.app import FlowTriageApp  # noqa: E402
from tui.feed import SnapshotFeed  # noqa: E402
from tui.models import explainer_of  # noqa: E402


def score(flows: pl.DataFrame, config):
    try:
        from engine.detect.scorer import load_scorer
    except ImportError:
        load_scorer = None
    if load_scorer is not None:
        scorer = load_scorer(config)
        return scorer.score(flows), scorer
    from engine.detect.rules import RuleSet

    marks = RuleSet.from_config(config.rules).apply(flows)
    scored = flows.with_columns(
        score=marks["rule_severity"],
        verdict=marks["rule_label"].fill_null("normal"),
        reasons=pl.when(marks["rule_names"] != "").then("rule " + marks["rule_names"]).otherwise(pl.lit("no rule")),
    )
    return scored, None


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
        for key in keys:  # e.g. sort by time and move down a few rows
            await pilot.press(key)
            await settle()
        app.save_screenshot("screenshot-main.svg", str(out))
        await pilot.press("enter")
        await settle()
        app.save_screenshot("screenshot-drilldown.svg", str(out))
        await pilot.press("pagedown")
        await settle()
        app.save_screenshot("screenshot-drilldown-context.svg", str(out))
        await pilot.press("q", "tab")
        await settle()
        app.save_screenshot("screenshot-sources.svg", str(out))
        await pilot.press("q", "slash", *"proto udp and port 53 and bytes >", "enter")
        await settle()
        app.save_screenshot("screenshot-filter-error.svg", str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--corpus", default="lab-dev")
    parser.add_argument("--shape", default="nfpcapd")
    parser.add_argument("--theme", default=None)
    parser.add_argument("--keys", default="1,down,down,down",
                        help="keys pressed on the main screen first (default: newest first, 4th row)")
    args = parser.parse_args()
    config = load_config(ROOT / "config.toml")
    if args.theme:
        import dataclasses

        config = dataclasses.replace(config, tui=dataclasses.replace(config.tui, theme=args.theme))
    dumps = sample_dumps(args.corpus, args.shape)
    flows, results = read_flows(dumps)
    flows = flows.with_columns(file=pl.col("file").str.replace(r"^.*/", "/var/flows/dumps/"))
    scored, scorer = score(flows, config)
    threshold = 0.5  # the bundled model's cut
    retained = (
        scored.with_columns(flow_id=pl.int_range(1, scored.height + 1, dtype=pl.UInt64))
        .filter(pl.col("score") >= threshold)
    )
    counters = Counters(
        files=len(dumps), newest_file=dumps[-1].name, lag_seconds=1.2, flows=scored.height,
        flows_per_second=scored.height / 300, flagged=retained.height,
        skipped_lines=sum(len(r.skipped) for r in results), errors=0,
        model_version=getattr(scorer, "version_", "") or ("rules-only" if scorer is None else "default"),
    )
    snapshot = Snapshot(1, retained, sources_of(scored, threshold), counters)
    app = FlowTriageApp(SnapshotFeed(snapshot), config, subtitle="watching /var/flows/dumps",
                        explainer=explainer_of(scorer), nfcapd_dir="/var/flows/nfcapd")
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
