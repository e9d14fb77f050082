"""`flowtriage watch DIR`: the live view (TUI), or with --headless the same pipeline writing JSONL."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.console import inert
from engine.cli.ui import run_tui
from engine.config.settings import Config
from engine.core.errors import UserError

if TYPE_CHECKING:
    from engine.live.session import Session

STATUS_EVERY = 10.0  # seconds between headless status lines on stderr


def register(sub, common) -> None:
    p = sub.add_parser("watch", parents=[common], help="watch a directory of rotating dumps")
    p.add_argument("directory", metavar="DIR", help="the directory the dumps are written into")
    p.add_argument("--headless", action="store_true", help="no TUI: append flows to --out")
    p.add_argument("--out", "--alerts", dest="out", metavar="FILE.jsonl",
                   help="headless output, JSON lines (--alerts is the same option)")
    p.add_argument("--all", action="store_true", help="write every flow, not only suspicious ones")
    p.add_argument("--from-start", action="store_true",
                   help="ignore checkpoints: read every dump again from its first line")
    p.add_argument("--since", metavar="TIME",
                   help="ignore checkpoints: read dumps modified at or after TIME (ISO 8601, "
                        "e.g. 2026-11-22T08:00), count older ones as read")
    p.add_argument("--model", metavar="MODEL", help="model file (default: [model] path)")
    p.add_argument("--rules-only", action="store_true",
                   help="score with the configured rules alone, no model (starts in a fraction "
                        "of the time; flows the rules miss are not flagged)")
    p.set_defaults(func=run)


def parse_since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()  # naive = local time, like the dumps
    except ValueError:
        raise UserError(f"--since {text!r}: expected ISO 8601 like 2026-11-22T08:00") from None


def session_of(args: argparse.Namespace, config: Config, *, headless: bool) -> Session:
    # Late (start-up time): the live session pulls in the pipeline, features and numpy, which
    # `watch --help` does not need.
    from engine.live.session import Session

    directory = Path(args.directory)
    return Session(
        directory, config, subtitle=f"watching {directory}", model=args.model,
        rules_only=args.rules_only, keep_all=args.all, from_start=args.from_start,
        since=parse_since(args.since), create_labels=not headless,
    )


def run(args: argparse.Namespace, config: Config) -> int:
    session = session_of(args, config, headless=args.headless)
    session.check()
    if not args.headless:
        return run_tui(session)
    if not args.out:
        raise UserError("--headless needs --out FILE.jsonl")
    return run_headless(session, args.out)


def run_headless(session: Session, out: str) -> int:
    # A stop asked for while the model loads (seconds) is honoured once it has: the handler
    # goes in first, so a service manager's SIGTERM at start-up ends the watcher cleanly.
    # The handler only flips a flag: it runs on the main thread between two bytecodes, and
    # anything that takes a lock there (threading.Event.set while the loop sits in
    # Event.wait) can deadlock on the lock the interrupted code holds. Seen in CI.
    stopping: list[int] = []

    def on_signal(signum, frame):
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        from engine.live.sink import (  # late: start-up time, as in session_of
            EventSink,
            JsonlSink,
            incidents_path,
        )

        events = incidents_path(out)
        pipeline, _scorer = session.open(sink=JsonlSink(out), incident_sink=EventSink(events))
    except BaseException:
        for s, handler in previous.items():
            signal.signal(s, handler)
        raise
    directory, config = session.directory, session.config
    feedback = pipeline.feedback
    shown = 0
    try:
        pipeline.start()
        # One line as soon as the pipeline runs: service logs (and tests) know it is up.
        print(
            f"flowtriage watch: watching {inert(str(directory))} "
            f"({config.watch.observer} observer, output {inert(out)}, "
            f"incidents {inert(str(events))}, "
            f"state {inert(str(pipeline.state.path))})",
            file=sys.stderr, flush=True,
        )
        last_status = time.monotonic()
        while not stopping and pipeline.error is None:
            time.sleep(0.2)  # messages reach the log within 0.2 s of being said
            if stopping:
                break
            shown = _messages(pipeline, shown)
            if time.monotonic() - last_status >= STATUS_EVERY:
                last_status = time.monotonic()
                _status(pipeline)
    finally:
        pipeline.stop()
        if feedback is not None:
            feedback.store.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    _messages(pipeline, shown)
    _status(pipeline)
    if pipeline.error is not None:
        print(f"flowtriage watch: stopped: {pipeline.error}", file=sys.stderr)
        return 1
    return 0


def _messages(pipeline, shown: int) -> int:
    """Print the messages said since the first `shown`; return the new count."""
    texts, shown = pipeline.messages_after(shown)
    for text in texts:
        print(f"flowtriage watch: {text}", file=sys.stderr, flush=True)
    return shown


def _status(pipeline) -> None:
    c = pipeline.latest.counters
    print(
        f"flowtriage watch: files={c.files} flows={c.flows} flagged={c.flagged} "
        f"rate={c.flows_per_second:.0f}/s lag={c.lag_seconds:.1f}s skipped={c.skipped_lines} "
        f"errors={c.errors} model={c.model_version}",
        file=sys.stderr, flush=True,
    )
