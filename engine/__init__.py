"""flowtriage engine: everything from reading dumps to verdicts and labels.

The engine never imports the UI (textual); tests/test_import_hygiene.py proves it.
"""

__version__ = "0.1.0"
