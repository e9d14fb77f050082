"""The command line: one module per command, console output and progress. The top layer; the
only one allowed to start the UI (through engine.cli.ui).
"""
