"""The command line's help names only what ships with the project (issue 15)."""

from __future__ import annotations

import pytest

from engine.cli.commands import COMMAND_MODULES
from engine.cli.entry import main


@pytest.mark.parametrize("command", COMMAND_MODULES)
def test_help_names_no_file_the_project_does_not_ship(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "DESIGN.md" not in text  # an internal design note, not in the repository


@pytest.mark.parametrize("command", ["score", "incidents"])
def test_a_folder_without_dumps_is_an_error_not_an_empty_result(command, tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "README.md").write_text("# not a dump\n\nsome notes\n")
    assert main([command, str(folder), "-o", str(tmp_path / "out.csv"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "README.md" in err and "no flows" in err
    assert not (tmp_path / "out.csv").exists()
