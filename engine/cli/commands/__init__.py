"""CLI subcommands, one module each; engine.cli.entry imports only the one being run.

COMMAND_HELP is the one-line summary `flowtriage --help` lists without importing the modules.
"""

COMMAND_HELP: dict[str, str] = {
    "parse": "read nfdump text dumps (any version/format) into canonical flow columns",
    "rules": "list the configured rules (compiling each), or check a filter",
    "score": "score dumps and write the suspicious flows (or all) to a file",
    "train": "train a model from rule labels, analyst labels and an optional labels file",
    "eval": "score dumps and compare with ground truth (confusion matrix, F1, ROC AUC, precision@n)",
    "incidents": "group the flagged flows of dumps into incidents (attack episodes)",
    "sources": "per-source summary of scored dumps (flows, bytes, peers, ports, suspicion)",
    "watch": "watch a directory of rotating dumps (the TUI, or --headless)",
    "demo": "the TUI on bundled sample dumps replayed as rotations (a first look)",
    "labels": "list, export or import analysts' labels",
    "models": "list model versions, make one current, or diff two on real dumps",
    "backfill": "score an archive into Parquet partitioned by exporter and day (local, Dask, Spark)",
}
COMMAND_MODULES: tuple[str, ...] = tuple(COMMAND_HELP)
