"""expand_paths: directories become their dumps, grouped per directory in rotation order."""

import pytest

from engine.batch import expand_paths
from engine.errors import UserError


def test_directories_expand_to_dumps_in_rotation_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for name in ("nfcapd.202611220836.txt", "nfcapd.202611220835.txt.gz", ".hidden", "m.skops",
                 "m.skops.json"):
        (a / name).write_text("x")
    (b / "nfcapd.202611220801.txt").write_text("x")
    found = expand_paths([b, a, a / "nfcapd.202611220836.txt"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a/nfcapd.202611220835.txt.gz",
        "a/nfcapd.202611220836.txt",
        "b/nfcapd.202611220801.txt",
    ]
    assert [p.name for p in expand_paths([a], glob="*.gz")] == ["nfcapd.202611220835.txt.gz"]


def test_missing_paths_and_empty_directories_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file or directory"):
        expand_paths([tmp_path / "nope"])
    with pytest.raises(UserError, match="no dump files in"):
        expand_paths([tmp_path])


def test_progress_bar_prints_file_names_inert(tmp_path):
    import io

    from rich.console import Console

    from engine.batch import file_progress

    hostile = tmp_path / "nfcapd.1\x1b]0;owned\x07.txt"
    plain = tmp_path / "nfcapd.2.txt"
    for path in (hostile, plain):
        path.write_text("x" * 100)
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=100)
    with file_progress([hostile, plain], console) as advance:
        advance(hostile)
        console.print("done")
    out = sink.getvalue()
    assert "\x1b]0;owned" not in out and "\\x1b]0;owned\\x07" in out
