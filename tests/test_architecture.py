"""The engine must never load the UI: importing any engine module leaves textual unloaded."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parent.parent


def test_engine_modules_never_import_textual():
    modules = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine."))
    modules = [m for m in modules if not m.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'tui')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"engine imported UI modules: {out.stdout.strip()}"
    assert "engine.config.settings" in modules and "engine.cli.entry" in modules
