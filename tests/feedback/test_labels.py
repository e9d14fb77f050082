"""LabelStore: an append-only, durable, multi-writer log of analyst labels (real SQLite)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime

import polars as pl
import pytest

from engine.config.settings import parse_config
from engine.core.dumpfiles import dump_name as provenance_name
from engine.core.errors import UserError
from engine.feedback.labelstore import LabelStore, UnknownLabel
from tests.conftest import ROOT

FLOW = {
    "ts_first": datetime(2027, 1, 11, 1, 40, 8, 230000),
    "src_addr": "127.10.38.95",
    "src_port": 44816,
    "dst_addr": "127.10.0.53",
    "dst_port": 53,
    "proto": "UDP",
    "file": "/dumps/nfcapd.202701110140.txt.gz",
    "line": 5,
    "score": 0.83,
    "verdict": "tunnel",
}


def other_flow(line: int) -> dict:
    return {**FLOW, "line": line, "src_port": 40000 + line}


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


def test_a_label_keeps_identity_provenance_and_what_it_corrected(store):
    event = store.add(FLOW, "normal", note="dig from the lab", model_version="m1", who="ana")
    row = store.current().row(0, named=True)
    assert event.kind == "label" and event.who == "ana"
    assert row["file"] == "nfcapd.202701110140.txt" and row["line"] == 5
    assert row["ts_first"] == FLOW["ts_first"] and row["src_port"] == 44816
    assert (row["label"], row["scope"], row["who"]) == ("normal", "flow", "ana")
    assert (row["verdict"], row["score"], row["model_version"]) == ("tunnel", 0.83, "m1")
    assert row["note"] == "dig from the lab" and row["at"].endswith("+00:00")


def test_the_latest_label_per_flow_wins_and_history_is_kept(store):
    store.add(FLOW, "tunnel")
    store.add(FLOW, "normal")
    store.add(other_flow(7), "scan")
    current = store.current()
    assert dict(zip(current["line"], current["label"], strict=True)) == {5: "normal", 7: "scan"}
    assert store.events().height == 3


def test_undo_records_an_event_and_restores_the_previous_label(store):
    store.add(FLOW, "tunnel", who="ana")
    second = store.add(FLOW, "normal", who="ana")
    undo = store.undo_last("ana")
    assert undo is not None and undo.target == second.id
    assert store.current()["label"].to_list() == ["tunnel"]
    assert store.events()["kind"].to_list() == ["label", "label", "undo"]
    store.undo_last("ana")
    assert store.current().height == 0
    assert store.undo_last("ana") is None
    with pytest.raises(UserError, match="already undone"):
        store.undo(second.id)


def test_undo_last_only_touches_the_users_own_labels(store):
    mine = store.add(FLOW, "tunnel", who="ana")
    store.add(other_flow(9), "scan", who="bob")
    assert store.undo_last("ana").target == mine.id
    assert store.current()["who"].to_list() == ["bob"]


def test_notes_attach_to_the_flow_and_can_be_undone(store):
    store.add(FLOW, "normal")
    store.add_note(FLOW, "resolver migration")
    assert store.current()["note"].to_list() == ["resolver migration"]
    store.undo_last()
    assert store.current()["note"].to_list() == [None]


def test_unknown_labels_are_refused_until_a_class_is_added(tmp_path):
    config = parse_config({"labels": {"db": str(tmp_path / "l.sqlite"), "extra_classes": ["c2"]}})
    store = LabelStore.from_config(config)
    store.add(FLOW, "c2")
    with pytest.raises(UnknownLabel, match="unknown label 'exfil'"):
        store.add(FLOW, "exfil")
    store.add_class("exfil")
    store.add(FLOW, "exfil")
    store.close()
    # The added class is stored with the labels: another process sees it.
    reopened = LabelStore(tmp_path / "l.sqlite")
    assert "exfil" in reopened.vocabulary() and "c2" not in reopened.vocabulary()
    with pytest.raises(UserError, match="invalid class name"):
        reopened.add_class("Bad Name;")


def test_scopes_need_what_they_match_on(store):
    with pytest.raises(UserError, match="scope 'vector' needs"):
        store.add(FLOW, "normal", scope="vector")
    with pytest.raises(UserError, match="unknown scope"):
        store.add(FLOW, "normal", scope="everything")
    source = store.add(FLOW, "normal", scope="source")
    row = store.events().filter(pl.col("id") == source.id).row(0, named=True)
    assert row["source_addr"] == "127.10.38.95"  # the client end, not the resolver
    assert row["window_end"] - row["window_start"] == 300_000
    assert row["window_start"] <= store.events()["ts_first"][0] < row["window_end"]


def test_provenance_name_drops_directory_and_compression():
    assert provenance_name("/a/b/nfcapd.202701110140.txt.zst") == "nfcapd.202701110140.txt"
    assert provenance_name("nfcapd.1.txt") == "nfcapd.1.txt"


CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from engine.feedback.labelstore import LabelStore
    store = LabelStore(sys.argv[1])
    flow = dict(ts_first=datetime(2027, 1, 11), src_addr="10.0.0.1", src_port=1,
                dst_addr="10.0.0.2", dst_port=53, proto="UDP", file="f.txt")
    for i in range(int(sys.argv[2])):
        store.add({**flow, "line": i + 1}, sys.argv[3], who=sys.argv[4])
        if sys.argv[5] == "report":
            print("saved", i + 1, flush=True)
    """
)


def test_a_label_survives_kill_9_right_after_add_returns(tmp_path):
    db = tmp_path / "labels.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), "100000", "normal", "ana", "report"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        saved = [child.stdout.readline() for _ in range(3)]
        time.sleep(0.001)  # one millisecond after "saved", while it is writing the next one
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert saved[-1].strip() == "saved 3"
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    lines = set(LabelStore(db).current()["line"].to_list())
    assert {1, 2, 3} <= lines


def test_two_processes_labelling_at_once_lose_nothing(tmp_path):
    db = tmp_path / "labels.sqlite"
    LabelStore(db).close()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), "500", label, who, "quiet"],
            cwd=ROOT, stderr=subprocess.PIPE, text=True,
        )
        for label, who in (("normal", "ana"), ("scan", "bob"))
    ]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    events = LabelStore(db).events()
    assert events.height == 1000
    counts = dict(events.group_by("who").len().iter_rows())
    assert counts == {"ana": 500, "bob": 500}
    assert events["id"].n_unique() == 1000
