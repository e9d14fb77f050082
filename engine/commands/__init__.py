"""CLI subcommands, one module each; engine.cli imports them in this order."""

COMMAND_MODULES: tuple[str, ...] = (
    "parse",
    "rules",
    "score",
    "train",
    "eval",
    "sources",
    "watch",
    "labels",
)
