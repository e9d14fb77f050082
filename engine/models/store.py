"""Model files: skops archives checked against a fixed allow-list, with a sha256 sidecar.

pickle and joblib run code on load, so a model file is never unpickled. A model is written with
skops as `NAME.skops` plus `NAME.skops.json` (the sidecar: sha256 of the model file, library
versions, features, training window, label counts, metrics). `load_model` reads the file once
into memory and then, on those bytes only:
1. requires the sidecar and the sha256 it records (a changed or truncated file is refused);
2. requires a skops archive (a pickle or joblib file renamed `.skops` is refused);
3. asks skops which non-default types the archive would construct and refuses any type that is
   not in TRUSTED_TYPES, a constant in this module. The file's own list is never passed back to
   skops: loading trusts TRUSTED_TYPES and nothing else.
The hash also guards against archives crafted to crash skops' loader after passing the type
check (see notes/ml-research.md section 4). It is not a signature: someone who can write both
files can replace both, which is why the type allow-list, not the hash, is the security boundary.

Versioned models (`model-YYYYMMDD-HHMMSS-<sha8>.skops`) can sit beside each other in one
directory for retrain and rollback: see `save_versioned` and `list_versions`.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import platform
import re
import stat
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from engine import __version__
from engine.core.errors import UserError

MODEL_FORMAT = "flowtriage-model"
FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".json"
BUNDLED_MODEL = Path(__file__).with_name("default.skops")

# Types skops does not trust by default that our models are allowed to contain. Extend this
# list (never with a type that can run arbitrary code, e.g. builtins or os functions) when a
# new estimator is added to the Detector; tests/test_modelstore.py round-trips each kind.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        # our own model classes (engine.detect.detector, engine.detect.outlier): plain attributes only
        "engine.detect.detector.Detector",
        "engine.detect.outlier.IForestOutlier",
        "engine.detect.outlier.KNNOutlier",
        "engine.detect.outlier.ABODOutlier",
        "engine.detect.outlier.HBOSOutlier",
        # scikit-learn internals (Cython structures of fitted estimators)
        "sklearn.tree._tree.Tree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        # PyOD detectors selectable in config
        "pyod.models.knn.KNN",
        "pyod.models.abod.ABOD",
        "pyod.models.iforest.IForest",
        "pyod.models.hbos.HBOS",
        "pyod.models.ecod.ECOD",
        "pyod.models.copod.COPOD",
        # numpy dtype objects stored as attributes (e.g. a model's classes_ dtype)
        "numpy.dtype",
    }
)

# Where model classes lived before the engine was split into layers: files saved then name the
# old modules, and are read as if they named the new ones (the hash check runs first, on the
# file as written; the allow-list check runs after, on the new names).
RENAMED_MODULES: dict[str, str] = {
    "engine.detect": "engine.detect.detector",
    "engine.outlier": "engine.detect.outlier",
}

_VERSIONED = re.compile(r"^model-(\d{8}-\d{6})-([0-9a-f]{8})\.skops$")
_LIBRARIES = ("scikit-learn", "pyod", "skops", "numpy", "polars")


class ModelRefused(UserError):
    """A model file that will not be loaded: missing sidecar, wrong hash, foreign types."""


@dataclass(frozen=True)
class ModelVersion:
    path: Path
    created: datetime  # from the file name, UTC
    sha8: str
    metadata: dict[str, Any] | None  # the sidecar, None if missing or unreadable


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "flowtriage": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def save_model(obj: Any, path: str | Path, *, metadata: dict[str, Any]) -> Path:
    """Write `obj` to `path` (skops) and its sidecar; both atomically. Returns `path`."""
    path = Path(path)
    data = _dump(obj)
    _write(path, data, metadata, datetime.now(UTC))
    return path


def save_versioned(obj: Any, directory: str | Path, *, metadata: dict[str, Any]) -> Path:
    """Write `obj` into `directory` as model-YYYYMMDD-HHMMSS-<sha8>.skops (older ones stay)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = _dump(obj)
    created = datetime.now(UTC)
    name = f"model-{created:%Y%m%d-%H%M%S}-{hashlib.sha256(data).hexdigest()[:8]}.skops"
    return _write(directory / name, data, metadata, created)


def list_versions(directory: str | Path) -> list[ModelVersion]:
    """Versioned models in `directory`, oldest first (by the time in the name, then the hash)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _VERSIONED.match(path.name)
        if match:
            created = datetime.strptime(match[1], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
            found.append(ModelVersion(path, created, match[2], _read_sidecar_quietly(path)))
    return sorted(found, key=lambda v: (v.created, v.sha8))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The sidecar of `path` (no model loading, no hash check); ModelRefused if unusable."""
    path = Path(path)
    side = sidecar_path(path)
    try:
        meta = json.loads(_read_bounded(side, MAX_SIDECAR_BYTES, "sidecar").decode("utf-8"))
    except FileNotFoundError:
        raise ModelRefused(
            f"{path}: no sidecar {side.name} beside it, so its integrity cannot be checked. "
            "Copy the model together with its .json sidecar, or retrain with `flowtriage train`."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelRefused(f"{path}: sidecar {side.name} is unreadable ({exc}); retrain") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ModelRefused(f"{path}: {side.name} is not a flowtriage model sidecar; retrain")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise ModelRefused(
            f"{path}: written by a newer flowtriage (format {meta.get('format_version')!r}, "
            f"this one reads {FORMAT_VERSION}); upgrade flowtriage or retrain"
        )
    return meta


def version_warnings(meta: dict[str, Any]) -> list[str]:
    """Libraries whose version differs from the one that wrote the model (worth a warning:
    scikit-learn does not promise that a model behaves the same across versions)."""
    saved = meta.get("libraries") or {}
    now = library_versions()
    return [
        f"{name} {saved[name]} wrote this model, {now[name]} is installed"
        for name in ("scikit-learn", "pyod", "skops", "numpy")
        # PyOD is an optional extra: absent, it matters only to a model that holds a PyOD
        # detector, and loading that one says so (see load_model)
        if name in saved and saved[name] != now.get(name)
        and not (name == "pyod" and now.get(name) == "missing")
    ]


def load_model(path: str | Path | None = None) -> Any:
    """Load a model written by save_model, after the checks in the module docstring.

    `path` None loads the bundled default model. Raises ModelRefused (a UserError) saying
    what is wrong and what to do.
    """
    path = Path(path) if path else BUNDLED_MODEL
    try:
        data = _read_bounded(path, MAX_MODEL_BYTES, "model file")
    except FileNotFoundError:
        raise ModelRefused(f"{path}: no such model file") from None
    except OSError as exc:
        raise ModelRefused(f"{path}: cannot read model file: {exc.strerror or exc}") from None
    meta = read_metadata(path)
    return load_model_bytes(data, meta.get("sha256"), where=str(path))


def load_model_bytes(data: bytes, sha256: Any, *, where: str) -> Any:
    """The checks of `load_model` on a model's bytes and the sha256 its sidecar records.

    Distributed runs broadcast a model's bytes and sidecar hash to their workers, which load it
    here: the same hash check and allow-list as on the driver, and never a pickle (a Detector
    is never serialised into a task). `where` names the file in messages.
    """
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelRefused(
            f"{where}: sha256 {actual[:16]}... does not match its sidecar "
            f"({str(sha256)[:16]}...): the file was changed or truncated after it "
            "was saved. Restore it from a trusted copy or retrain with `flowtriage train`."
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        kind = "a pickle/joblib file" if data[:1] == b"\x80" else "not a skops archive"
        raise ModelRefused(
            f"{where}: {kind}; flowtriage only loads skops model files and never unpickles. "
            "Retrain with `flowtriage train` to get one."
        )
    _check_archive(Path(where), data)
    try:
        data = _with_current_module_names(data)
        untrusted = set(_skops().get_untrusted_types(data=data))
    except Exception as exc:  # a damaged archive can fail in many ways inside skops
        raise ModelRefused(f"{where}: not a valid skops model file ({exc}); retrain") from None
    foreign = sorted(untrusted - TRUSTED_TYPES)
    if foreign:
        raise ModelRefused(
            f"{where}: contains types outside flowtriage's allow-list: {', '.join(foreign)}. "
            "Refusing to load it; use a model made by `flowtriage train`."
        )
    try:
        return _skops().loads(data, trusted=sorted(TRUSTED_TYPES))
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "pyod":
            raise ModelRefused(
                f"{where}: its outlier detector comes from PyOD, which is not installed: "
                "pip install 'flowtriage[pyod]'"
            ) from None
        raise ModelRefused(f"{where}: the skops archive could not be loaded ({exc}); retrain") from None
    except Exception as exc:
        raise ModelRefused(f"{where}: the skops archive could not be loaded ({exc}); retrain") from None


# A model file is read whole to check its hash: bounded, and only from a regular file (a FIFO
# or /dev/zero given as a model would otherwise hang or fill memory). The bundled model is
# about 1 MB; retrained forests stay far below these.
MAX_MODEL_BYTES = 512 << 20
MAX_SIDECAR_BYTES = 4 << 20
MAX_ARCHIVE_TEXT = 2 << 30  # uncompressed size of all members together (a zip bomb is refused)
MAX_ARCHIVE_RATIO = 200.0
MAX_ARCHIVE_MEMBERS = 100_000


def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"not a regular file (a {what} must be one)")
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"{st.st_size:,} bytes, more than a {what} can be "
                          f"({limit:,})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"more than a {what} can be ({limit:,} bytes)")
        return data
    finally:
        os.close(fd)


def _check_archive(path: Path, data: bytes) -> None:
    """Refuse a zip whose members would decompress beyond the budget, before skops opens it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelRefused(f"{path}: not a valid skops model file ({exc}); retrain") from None
    total = sum(m.file_size for m in members)
    if (len(members) > MAX_ARCHIVE_MEMBERS or total > MAX_ARCHIVE_TEXT
            or total > MAX_ARCHIVE_RATIO * max(len(data), 1) + (64 << 20)):
        raise ModelRefused(
            f"{path}: its archive would unpack to {total:,} bytes in {len(members):,} members "
            f"from {len(data):,}: refused as a zip bomb; retrain with `flowtriage train`"
        )


def _skops() -> Any:
    # skops imports all of scikit-learn (~1.5 s): only when a model is read or written, so
    # `--rules-only`, `--help` and the commands that need no model start without it.
    import skops.io

    return skops.io


def _with_current_module_names(data: bytes) -> bytes:
    """The archive with RENAMED_MODULES applied to its schema (unchanged when none occur)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = archive.read("schema.json")
        if not any(f'"{old}"'.encode() in schema for old in RENAMED_MODULES):
            return data
        tree = json.loads(schema)

        def rename(node: Any) -> None:
            if isinstance(node, dict):
                module = node.get("__module__")
                if isinstance(module, str) and module in RENAMED_MODULES:
                    node["__module__"] = RENAMED_MODULES[module]
                for value in node.values():
                    rename(value)
            elif isinstance(node, list):
                for value in node:
                    rename(value)

        rename(tree)
        out = io.BytesIO()
        # stored, not deflated: it lives only in memory, and compressing it again cost
        # 0.2 s of every start-up of a model saved under the old names (the bundled one)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as renamed:
            for info in archive.infolist():
                body = json.dumps(tree).encode() if info.filename == "schema.json" else archive.read(info)
                renamed.writestr(info.filename, body)
    return out.getvalue()


def _dump(obj: Any) -> bytes:
    sio = _skops()
    data = sio.dumps(obj, compression=zipfile.ZIP_DEFLATED)
    # Never write a file we would refuse to read back.
    foreign = sorted(set(sio.get_untrusted_types(data=data)) - TRUSTED_TYPES)
    if foreign:
        raise ValueError(
            f"model contains types missing from engine.models.store.TRUSTED_TYPES: {', '.join(foreign)}"
        )
    return data


def _write(path: Path, data: bytes, metadata: dict[str, Any], created: datetime) -> Path:
    sidecar = {
        **metadata,
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "created": created.isoformat(timespec="seconds"),
        "libraries": library_versions(),
    }
    text = json.dumps(sidecar, indent=2, sort_keys=True, default=str) + "\n"
    # The model lands before its sidecar: a crash in between leaves a hash mismatch (refused),
    # never a sidecar vouching for a half-written model.
    _atomic_write(path, data)
    _atomic_write(sidecar_path(path), text.encode("utf-8"))
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_sidecar_quietly(path: Path) -> dict[str, Any] | None:
    try:
        return read_metadata(path)
    except ModelRefused:
        return None
