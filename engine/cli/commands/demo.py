"""`flowtriage demo`: the TUI on bundled sample dumps replayed as rotations."""

from __future__ import annotations

import argparse

from engine.cli.ui import run_tui
from engine.config.settings import Config


def register(sub, common) -> None:
    p = sub.add_parser(
        "demo", parents=[common],
        help="the TUI on bundled sample dumps replayed into a temporary directory",
        description="Replays real nfdump dumps bundled with flowtriage into a temporary directory, "
        "one rotation every --interval seconds, and watches it with the TUI and the bundled model.",
    )
    p.add_argument("--interval", type=float, default=5.0, metavar="SECONDS",
                   help="seconds between rotations (default 5)")
    p.add_argument("--corpus", default="lab-dev", help="bundled corpus: lab-dev or lab-mixed-dev")
    p.add_argument("--shape", default="nfpcapd", help="flow shape: nfpcapd (per packet) or routerlike")
    p.add_argument("--model", metavar="MODEL", help="model file (default: [model] path, else the bundled one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    # Late (start-up time): the live session pulls in the pipeline, features and numpy, which
    # `demo --help` does not need.
    from engine.live.session import demo_session

    with demo_session(
        config, corpus=args.corpus, shape=args.shape, interval=args.interval, model=args.model
    ) as session:
        return run_tui(session)
