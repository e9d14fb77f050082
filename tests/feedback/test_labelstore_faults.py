"""The label store on a bad day: read-only, damaged, missing. Commands that only read work on
a read-only store; a damaged store takes no writes and says so by name; nothing is a
traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from engine.cli.entry import main
from engine.core.errors import UserError
from engine.feedback.labelstore import LabelStore


def _config(tmp_path, db):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[labels]\ndb = "{db}"\n')
    return cfg


def _with_labels(tmp_path):
    db = tmp_path / "store" / "labels.sqlite"
    cfg = _config(tmp_path, db)
    src = tmp_path / "in.csv"
    src.write_text("label,file,line\n" + "".join(f"normal,d.txt,{i}\n" for i in range(2, 400)))
    assert main(["labels", "import", str(src), "--config", str(cfg)]) == 0
    return db, cfg


def test_list_and_export_need_no_write_access(tmp_path, capsys):
    db, cfg = _with_labels(tmp_path)
    if os.geteuid() == 0:
        small = tmp_path / "store"
        # root ignores file modes: make the directory a read-only bind mount instead
        done = subprocess.run(["mount", "--bind", "-o", "ro", str(small), str(small)],
                              capture_output=True)
        if done.returncode != 0:
            pytest.skip("needs a read-only mount (root ignores file modes)")
        subprocess.run(["mount", "-o", "remount,ro,bind", str(small)], capture_output=True)
    else:
        os.chmod(db, 0o444)
        os.chmod(db.parent, 0o555)
    try:
        capsys.readouterr()
        assert main(["labels", "list", "--config", str(cfg)]) == 0
        assert "normal" in capsys.readouterr().out
        out = tmp_path / "export.csv"
        assert main(["labels", "export", "-o", str(out), "--config", str(cfg)]) == 0
        assert len(out.read_text().splitlines()) == 399
        src = tmp_path / "more.csv"
        src.write_text("label,file,line\nscan,e.txt,2\n")
        assert main(["labels", "import", str(src), "--config", str(cfg)]) == 2
        assert "labels.sqlite" in capsys.readouterr().err
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(tmp_path / "store")], capture_output=True)
        else:
            os.chmod(db.parent, 0o755)
            os.chmod(db, 0o644)


def test_a_damaged_store_takes_no_writes_and_is_named(tmp_path, capsys):
    db, cfg = _with_labels(tmp_path)
    with sqlite3.connect(db) as con:  # fold the WAL in, so the damage is in the main file
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray(db.read_bytes())
    page = 4096
    for p in range(2, len(raw) // page):  # scribble over the b-tree pages, keep the header
        raw[p * page + 8 : p * page + 200] = os.urandom(192)
    db.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="labels.sqlite"):
        LabelStore(db)
    src = tmp_path / "more.csv"
    src.write_text("label,file,line\nscan,e.txt,2\n")
    capsys.readouterr()
    assert main(["labels", "import", str(src), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "labels.sqlite" in err and "Traceback" not in err
    code = main(["labels", "list", "--config", str(cfg)])  # reads what it can, or says why
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err


def test_reading_a_missing_store_creates_nothing(tmp_path, capsys):
    db = tmp_path / "nowhere" / "labels.sqlite"
    cfg = _config(tmp_path, db)
    assert main(["labels", "list", "--config", str(cfg)]) == 0
    assert not db.exists() and not db.parent.exists()
