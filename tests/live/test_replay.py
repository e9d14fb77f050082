"""The demo's replayer: bundled dumps appear whole, in rotation order."""

from __future__ import annotations

import gzip

import pytest

from engine.core.errors import UserError
from engine.live.replay import Replayer, sample_dumps


def test_bundled_samples_are_found_in_rotation_order():
    dumps = sample_dumps("lab-dev", "nfpcapd")
    assert len(dumps) == 5 and [d.name for d in dumps] == sorted(d.name for d in dumps)
    with gzip.open(dumps[0], "rt") as fh:
        assert fh.readline().startswith("Date first seen")


def test_unknown_corpus_is_a_user_error_naming_the_choices():
    with pytest.raises(UserError, match="lab-dev/nfpcapd"):
        sample_dumps("no-such-corpus")


def test_replayer_places_every_dump_whole(tmp_path):
    dumps = sample_dumps("lab-dev", "routerlike")
    target = tmp_path / "dumps"
    target.mkdir()
    replayer = Replayer(dumps, target, interval=0, staging=tmp_path / "staging").start()
    replayer._thread.join(timeout=30)
    assert replayer.done
    assert sorted(p.name for p in target.iterdir()) == [d.name for d in dumps]
    for dump in dumps:
        assert (target / dump.name).read_bytes() == dump.read_bytes()
    assert list((tmp_path / "staging").iterdir()) == []  # nothing half-written left behind


def test_replayer_stops_between_rotations(tmp_path):
    dumps = sample_dumps("lab-dev", "nfpcapd")
    target = tmp_path / "dumps"
    target.mkdir()
    replayer = Replayer(dumps, target, interval=3600, staging=tmp_path / "staging").start()
    while not replayer.placed:
        replayer._thread.join(timeout=0.05)
    replayer.stop()
    assert [p.name for p in target.iterdir()] == [dumps[0].name]  # the first at once, then stopped
