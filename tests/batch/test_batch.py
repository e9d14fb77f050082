"""expand_paths: directories become their dumps, grouped per directory in rotation order."""

import pytest

from engine.batch.plan import expand_paths
from engine.core.errors import UserError


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
