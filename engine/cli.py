"""The `flowtriage` command line: one subcommand per module in engine.commands.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func(args, config) -> int`. Commands that need the UI (watch without --headless, demo)
import `tui` inside their function, so importing the engine never loads textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine import __version__
from engine.commands import COMMAND_MODULES
from engine.config import ConfigError, load_config
from engine.errors import UserError


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI, or with `only` just that command: importing every command module pulls
    in scikit-learn and skops, seconds of start-up that `watch` restarts should not pay."""
    parser = argparse.ArgumentParser(
        prog="flowtriage",
        description="Triage DNS-borne attacks in nfdump NetFlow text dumps.",
    )
    parser.add_argument("--version", action="version", version=f"flowtriage {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: ./config.toml, then the user config dir)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES if only is None else (only,):
        importlib.import_module(f"engine.commands.{name}").register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The command comes first (the only options before it are --help and --version).
    only = argv[0] if argv and argv[0] in COMMAND_MODULES else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        return int(args.func(args, config) or 0)
    except (ConfigError, UserError) as exc:
        print(f"flowtriage {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `flowtriage ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
