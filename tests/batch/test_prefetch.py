"""Reading the next dump while this one is scored (engine.batch.plan.Prefetch) changes nothing:
the same flows, scores, verdicts and output bytes, in the same order, as a plain loop."""

import threading
import time

import polars as pl
import pytest

from engine.batch.plan import Prefetch, expand_paths, iter_scored
from engine.batch.run import scored_run
from engine.config.settings import load_config
from engine.core.errors import UserError
from engine.core.output import write_frame
from engine.models.store import load_model
from tests.conftest import ROOT

SAMPLES = ROOT / "data/samples"
# Two rotations of two exporter shapes: history carries within a directory and not across.
DUMPS = [SAMPLES / "lab-mixed-dev/routerlike", SAMPLES / "lab-dev/nfpcapd"]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cfg")
    path = tmp / "config.toml"
    path.write_text(f'[ingest]\ntimezone = "UTC"\n[labels]\ndb = "{tmp / "labels.sqlite"}"\n')
    return load_config(path)


def _run(config, prefetch: bool) -> tuple[list[str], list[pl.DataFrame]]:
    run = scored_run([str(p) for p in DUMPS], config, analyst_labels=True, prefetch=prefetch)
    names, frames = [], []
    for item, scored in run.items:
        names.append(item.path.name)
        frames.append(scored)
    return names, frames


def test_scores_verdicts_and_bytes_are_the_same_with_and_without_prefetch(config, tmp_path):
    names_on, on = _run(config, prefetch=True)
    names_off, off = _run(config, prefetch=False)
    assert names_on == names_off == [p.name for p in expand_paths(DUMPS)]
    assert len(names_on) == 10
    for a, b in zip(on, off, strict=True):
        assert a["verdict"].to_list() == b["verdict"].to_list()
        assert a.equals(b)
    # attacks are in these dumps: the comparison covers flagged flows, not only normal ones
    assert sum((f["verdict"] != "normal").sum() for f in on) > 1000
    for suffix in ("csv", "parquet", "jsonl"):
        written = []
        for label, frames in (("on", on), ("off", off)):
            out = tmp_path / f"{label}.{suffix}"
            write_frame(pl.concat(frames), out)
            written.append(out.read_bytes())
        assert written[0] == written[1], suffix


def test_the_same_scores_on_every_run(config):
    """Forest probabilities are summed in tree order (engine.detect.forest): no run-to-run
    jitter in the last bits that would make two outputs differ."""
    detector = load_model()
    paths = expand_paths([DUMPS[1]])
    first = [s for _, s in iter_scored(paths, detector, timezone="UTC")]
    again = [s for _, s in iter_scored(paths, detector, timezone="UTC", prefetch=False)]
    for a, b in zip(first, again, strict=True):
        assert a["score"].to_list() == b["score"].to_list()


def test_a_failure_in_the_reader_reaches_the_consumer_at_its_place():
    def items():
        yield 1
        yield 2
        raise UserError("dump 3: cannot read")

    got = []
    with pytest.raises(UserError, match="dump 3"):
        with Prefetch(items()) as ahead:
            for x in ahead:
                got.append(x)
    assert got == [1, 2]


def test_closing_stops_the_reader_early():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    with Prefetch(items(), ahead=1) as ahead:
        assert next(ahead) == 0
    time.sleep(0.05)
    # stopped: the item taken, at most one queued and one waiting to be queued
    assert len(produced) <= 3
    assert not any(t.name == "flowtriage-prefetch" and t.is_alive() for t in threading.enumerate())


def test_a_refused_model_stops_the_reader(config, tmp_path):
    bad = tmp_path / "m.skops"
    bad.write_bytes(b"\x80not a model")
    with pytest.raises(UserError):
        scored_run([str(DUMPS[0])], config, model=str(bad), analyst_labels=False)
    assert not any(t.name == "flowtriage-prefetch" and t.is_alive() for t in threading.enumerate())
