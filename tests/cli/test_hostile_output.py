"""No escape or control sequence from a file name, a dump or a label reaches the terminal:
file-name lines, error messages and `labels export -o -` all go through the sanitizer."""

from __future__ import annotations

import gzip
import os
import pty
import subprocess
import sys

import pytest

from engine.cli.entry import main
from tests.conftest import ROOT

OSC = "\x1b]0;PWNED\x07"
CSI = "\x1b[2J"
C1 = "\x9b31m"
BIDI = "\u202e"
HOSTILE = OSC + CSI + C1 + BIDI
EXTENDED = ROOT / "tests/fixtures/formats/isp-port53.nfdump-1.7.8.extended.txt.gz"


def _clean(text: str) -> None:
    for bad in ("\x1b", "\x07", "\x9b", BIDI):
        assert bad not in text, repr(text)


def test_parse_prints_a_hostile_file_name_inert(tmp_path, capsys):
    path = tmp_path / f"dump{HOSTILE}.txt"
    path.write_bytes(gzip.decompress(EXTENDED.read_bytes()) + f"{HOSTILE} junk\n".encode())
    assert main(["parse", str(path), "-o", str(tmp_path / "o.csv")]) == 0
    captured = capsys.readouterr()
    _clean(captured.err + captured.out)
    assert "PWNED" in captured.err  # shown, as text


@pytest.mark.parametrize(
    "argv",
    [
        ["parse", f"missing{HOSTILE}.txt", "-o", "{tmp}/o.csv"],
        ["score", f"missing{HOSTILE}", "-o", "{tmp}/o.csv"],
        ["sources", f"missing{HOSTILE}"],
        ["eval", f"missing{HOSTILE}", "--truth", f"t{HOSTILE}.csv"],
        ["train", f"missing{HOSTILE}", "-o", "{tmp}/m.skops", "--no-label-db"],
        ["labels", "import", f"missing{HOSTILE}.csv"],
        ["rules", "--check", f"proto udp and {HOSTILE}"],
        ["score", str(EXTENDED), "-o", f"{{tmp}}/o{HOSTILE}.xyz"],
        ["score", str(EXTENDED), "-o", "{tmp}/o.csv", "--model", f"m{HOSTILE}.skops"],
        ["parse", str(EXTENDED), "-o", "{tmp}/o.csv", "--config", f"c{HOSTILE}.toml"],
        ["watch", f"missing{HOSTILE}", "--headless", "--out", "{tmp}/o.jsonl"],
    ],
    ids=lambda a: "-".join(x for x in a[:2] if x.isalpha()),
)
def test_error_messages_are_inert(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    captured = capsys.readouterr()
    assert code != 0
    _clean(captured.err + captured.out)


def test_labels_export_to_a_terminal_is_inert(tmp_path):
    """Written to a terminal, exported notes and names are shown inert (to a pipe or a file
    they stay the data they are)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[labels]\ndb = "{tmp_path / "labels.sqlite"}"\n')
    labels = tmp_path / "in.csv"
    labels.write_text(f"label,file,line\nnormal,d{OSC}.txt,2\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "engine", "labels", "import", str(labels),
                    "--config", str(cfg)], check=True, cwd=ROOT, env=env, capture_output=True)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "labels", "export", "-o", "-", "--config", str(cfg)],
        stdout=follower, stderr=follower, cwd=ROOT, env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "PWNED" in text
    _clean(text)
    piped = subprocess.run([sys.executable, "-m", "engine", "labels", "export", "-o", "-",
                            "--config", str(cfg)], cwd=ROOT, env=env, capture_output=True)
    assert OSC.encode() in piped.stdout  # data stays data off a terminal


def test_labels_import_takes_the_name_literally_not_as_a_glob(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[labels]\ndb = "{tmp_path / "labels.sqlite"}"\n')
    (tmp_path / "lab1.csv").write_text("label,file,line\nnormal,d.txt,2\n")
    code = main(["labels", "import", str(tmp_path / "lab[1].csv"), "--config", str(cfg)])
    assert code == 2
    assert "no such" in capsys.readouterr().err
    (tmp_path / "lab[1].csv").write_text("label,file,line\nscan,e.txt,3\nscan,e.txt,4\n")
    assert main(["labels", "import", str(tmp_path / "lab[1].csv"), "--config", str(cfg)]) == 0
    assert "imported 2 labels" in capsys.readouterr().out
