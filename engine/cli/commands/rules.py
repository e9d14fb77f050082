"""`flowtriage rules`: list the configured rules, or check one nfdump filter (like `nfdump -Z`)."""

from __future__ import annotations

import argparse

from engine.config.settings import Config
from engine.core.errors import UserError
from engine.detect.rules import RuleError, RuleSet
from engine.filters.language import FilterError, format_filter, parse_filter


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "rules",
        parents=[common],
        help="list the configured rules (compiling each), or check a filter",
        description="List the [[rules]] of the configuration, compiling every filter; a bad "
        "filter is reported with its rule name and position. With --check FILTER, compile one "
        "nfdump filter and print it back in normalised form.",
    )
    parser.add_argument("--check", metavar="FILTER", help="compile this nfdump filter and print its normal form")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    if args.check is not None:
        try:
            print(format_filter(parse_filter(args.check)))
        except FilterError as exc:
            raise UserError(f"bad filter: {exc}") from None
        return 0
    try:
        ruleset = RuleSet.from_config(config.rules)
    except RuleError as exc:
        where = f"{config.source}: " if config.source else ""
        raise UserError(f"{where}{exc}") from None
    width = max((len(r.name) for r in ruleset.rules), default=4)
    label_width = max((len(r.label) for r in ruleset.rules), default=5)
    print(f"{'name':<{width}}  {'label':<{label_width}}  severity  filter")
    for rule in ruleset.rules:
        print(f"{rule.name:<{width}}  {rule.label:<{label_width}}  {rule.severity:8.2f}  {rule.filter}")
    return 0
