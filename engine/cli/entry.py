"""The `flowtriage` command line: one subcommand per module in engine.cli.commands.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func(args, config) -> int`. Commands that need the UI (watch without --headless, demo)
import `tui` inside their function, so importing the engine never loads textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine import __version__
from engine.cli.commands import COMMAND_HELP, COMMAND_MODULES
from engine.config.settings import ConfigError, load_config
from engine.core.errors import UserError
from engine.core.sanitize import inert


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (None: list every command, import none).

    Importing a command module can pull in scikit-learn and skops (seconds on a loaded box), so
    `flowtriage parse` or `--help` must not pay for `score`'s imports.
    """
    parser = argparse.ArgumentParser(
        prog="flowtriage",
        description="Triage DNS-borne attacks in nfdump NetFlow text dumps.",
    )
    parser.add_argument("--version", action="version", version=f"flowtriage {__version__}")
    # Also accepted before the command; a separate dest, because a subparser's default (None)
    # would overwrite a value parsed at the top level.
    parser.add_argument("--config", dest="config_first", metavar="FILE", help=argparse.SUPPRESS)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: ./config.toml, then the user config dir)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        if name == command:
            importlib.import_module(f"engine.cli.commands.{name}").register(sub, common)
        else:
            sub.add_parser(name, help=COMMAND_HELP.get(name), add_help=False)
    return parser


def _command_in(argv: list[str]) -> str | None:
    # The first known command name: `--config X score` must not take X for the command.
    return next((a for a in argv if a in COMMAND_MODULES), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        command = _command_in(argv)
        parser = build_parser(command)
        args = parser.parse_args(argv)
        config = load_config(getattr(args, "config", None) or args.config_first)
        return int(args.func(args, config) or 0)
    except (ConfigError, UserError) as exc:
        # messages quote paths, filters and file contents: shown inert, never interpreted
        text = "\n".join(inert(line) for line in str(exc).split("\n"))  # keeps a caret line
        print(f"flowtriage {command}: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `flowtriage ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
