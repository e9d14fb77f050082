"""Start-up: nothing heavy is imported before it is needed. `--help` of every command, and
`parse`, `rules` and `labels` runs, start without scikit-learn, skops, scipy, PyOD or textual
(importing scikit-learn alone is over a second of Python; see bench/e2e.py for the times)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.cli.commands import COMMAND_MODULES
from tests.conftest import ROOT

HEAVY = ("sklearn", "skops", "scipy", "pyod", "textual", "pandas")
DUMP = ROOT / "data/samples/lab-dev/nfpcapd/nfcapd.202611220835.txt.gz"


def _heavy_modules_after(argv: list[str], tmp_path) -> list[str]:
    code = (
        "import sys\n"
        "from engine.cli.entry import main\n"
        "try:\n"
        f"    code = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"print(code, ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    config = tmp_path / "config.toml"
    config.write_text(f'[labels]\ndb = "{tmp_path / "labels.sqlite"}"\n')
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    status, _, loaded = out.stdout.strip().rpartition("\n")[2].partition(" ")
    assert status in ("0", "None"), out.stderr
    return [m for m in loaded.split(",") if m]


@pytest.mark.parametrize("command", [None, *COMMAND_MODULES])
def test_help_imports_nothing_heavy(command, tmp_path):
    argv = ["--help"] if command is None else [command, "--help"]
    assert _heavy_modules_after(argv, tmp_path) == []


@pytest.mark.parametrize("argv", [
    ["parse", str(DUMP), "-o", "flows.csv"],
    ["rules"],
    ["rules", "--check", "proto udp and src port 53"],
    ["labels", "list"],
])
def test_commands_without_a_model_import_no_model_libraries(argv, tmp_path):
    assert _heavy_modules_after([*argv, "--config", str(tmp_path / "config.toml")], tmp_path) == []
