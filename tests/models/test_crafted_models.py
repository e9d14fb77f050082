"""Crafted model files: each is refused with a ModelRefused naming the file, quickly and with
bounded memory; none runs code, hangs, unpacks a bomb or ends in a traceback."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import zipfile

import pytest

from engine.models.store import (
    MAX_MODEL_BYTES,
    ModelRefused,
    load_model,
    read_metadata,
    sidecar_path,
)


class Foreign:
    def __init__(self):
        self.payload = "anything could run here on import"


def _sidecar_for(path, data: bytes) -> None:
    sidecar_path(path).write_text(json.dumps({
        "format": "flowtriage-model", "format_version": 1,
        "sha256": hashlib.sha256(data).hexdigest(),
    }))


@pytest.fixture(autouse=True)
def _no_hang():
    """A refusal must come fast: a hang (a FIFO read for ever) fails the test instead."""
    def bail(*_):
        raise TimeoutError("model loading hung")
    old = signal.signal(signal.SIGALRM, bail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_a_foreign_type_nested_deep_inside_allowed_containers_is_refused(tmp_path):
    import skops.io as sio

    payload = {"model": [{"deep": (1, 2.0, {"deeper": [None, {"x": Foreign()}]})}]}
    path = tmp_path / "nested.skops"
    data = sio.dumps(payload)
    path.write_bytes(data)
    _sidecar_for(path, data)
    with pytest.raises(ModelRefused, match="allow-list: .*Foreign"):
        load_model(path)


def test_a_fifo_as_model_or_sidecar_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "m.skops"
    os.mkfifo(fifo)
    with pytest.raises(ModelRefused, match="regular file"):
        load_model(fifo)
    model = tmp_path / "real.skops"
    model.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    os.mkfifo(sidecar_path(model))
    with pytest.raises(ModelRefused, match="regular file"):
        read_metadata(model)


def test_a_device_or_a_huge_file_is_refused_without_reading_it(tmp_path):
    with pytest.raises(ModelRefused, match="regular file"):
        load_model("/dev/zero")
    huge = tmp_path / "huge.skops"
    with open(huge, "wb") as fh:  # sparse: takes no disk
        fh.truncate(MAX_MODEL_BYTES + 1)
    _sidecar_for(huge, b"")
    with pytest.raises(ModelRefused, match="more than a model file can be"):
        load_model(huge)


def test_a_zip_bomb_with_a_matching_sidecar_is_refused_before_unpacking(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b'{"__class__": "dict", "__module__": "builtins"}')
        with archive.open("bomb.npy", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(256):  # 256 MiB of zeros, about 256 kB compressed
                member.write(chunk)
    data = buf.getvalue()
    path = tmp_path / "bomb.skops"
    path.write_bytes(data)
    _sidecar_for(path, data)
    with pytest.raises(ModelRefused, match="zip bomb"):
        load_model(path)


@pytest.mark.parametrize(
    "sidecar",
    [bytes(range(256)), b"[1, 2]", b'{"format": "flowtriage-model"}', b"\xff" * 10, b"{" * 100000],
    ids=["binary", "a-list", "no-version", "not-utf8", "deep-json"],
)
def test_a_broken_sidecar_is_a_refusal_not_a_traceback(tmp_path, sidecar):
    path = tmp_path / "m.skops"
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    sidecar_path(path).write_bytes(sidecar)
    with pytest.raises(ModelRefused):
        load_model(path)


@pytest.mark.parametrize("cut", [10, 1000, -100])
def test_a_truncated_archive_with_a_matching_sidecar_is_refused(tmp_path, cut):
    from engine.models.registry import BUNDLED_MODEL

    data = BUNDLED_MODEL.read_bytes()[:cut]
    path = tmp_path / "cut.skops"
    path.write_bytes(data)
    _sidecar_for(path, data)
    with pytest.raises(ModelRefused):
        load_model(path)
