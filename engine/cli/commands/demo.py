"""`flowtriage demo`: the TUI on bundled sample dumps replayed as rotations."""

from __future__ import annotations

import argparse
import os
import shutil
import signal

from engine.cli.ui import run_tui
from engine.config.settings import Config


def register(sub, common) -> None:
    p = sub.add_parser(
        "demo", parents=[common],
        help="the TUI on bundled sample dumps replayed into a temporary directory",
        description="Replays real nfdump dumps bundled with flowtriage into a temporary directory, "
        "one rotation every --interval seconds, and watches it with the TUI and the bundled model.",
    )
    # 3 s: the five rotations of a bundled corpus are in within 12 s of the first, so every
    # attack is on the first screen soon after start-up (bench/demo_incidents.py measures it)
    p.add_argument("--interval", type=float, default=3.0, metavar="SECONDS",
                   help="seconds between rotations (default 3)")
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
        root = session.directory.parent  # the demo's temporary directory

        def hangup(signum: int, frame: object) -> None:
            # The terminal is gone (an SSH drop): nobody will quit, and Python's default for
            # SIGHUP skips every cleanup. Remove what the demo made, then go.
            shutil.rmtree(root, ignore_errors=True)
            os._exit(128 + signum)

        previous = signal.signal(signal.SIGHUP, hangup)
        try:
            return run_tui(session)
        finally:
            signal.signal(signal.SIGHUP, previous)
