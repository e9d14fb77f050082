"""Which model is current: the one place that decides it, loads it and checks it.

Order, first that applies: `--model`, `[model] path`, the version the model directory's
CURRENT file names (written when a retrain is accepted or a version is rolled back to), the
bundled model. With none of them present the scorer falls back to the rules alone.
Versioned models (`model-YYYYMMDD-HHMMSS-<sha8>.skops`) sit in the model directory for
retrain and rollback; the bundled model is version 0 and is never written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config.settings import Config
from engine.core.errors import UserError
from engine.detect.rules import RuleSet
from engine.detect.scorer import RuleScorer
from engine.models.store import (
    BUNDLED_MODEL,
    ModelRefused,
    ModelVersion,
    list_versions,
    load_model,
    read_metadata,
    version_warnings,
)

CURRENT = "CURRENT"
BUNDLED = "bundled"  # version 0: what CURRENT says when an analyst rolls back to the bundled model
Warn = Callable[[str], None]


@dataclass(frozen=True)
class Version:
    """One selectable model: the bundled one (version 0) or a versioned file."""

    name: str  # "bundled" or the file's stem
    path: Path
    metadata: dict[str, Any] | None
    current: bool


def set_current(model_dir: str | Path, path: str | Path) -> None:
    """Name `path` in model_dir/CURRENT (atomically): the model a restart loads."""
    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    name = BUNDLED if Path(path) == BUNDLED_MODEL else Path(path).name
    tmp = directory / f".{CURRENT}.part"
    tmp.write_text(name + "\n", encoding="utf-8")
    tmp.replace(directory / CURRENT)


def all_versions(model_dir: str | Path) -> list[Version]:
    """The bundled model (version 0) and every versioned model, oldest first; which is current."""
    current = current_model(model_dir) if (Path(model_dir) / CURRENT).is_file() else None
    current = current or BUNDLED_MODEL
    bundled_meta = read_metadata(BUNDLED_MODEL) if BUNDLED_MODEL.exists() else None
    found = [Version(BUNDLED, BUNDLED_MODEL, bundled_meta, current == BUNDLED_MODEL)]
    found += [
        Version(v.path.stem, v.path, v.metadata, current == v.path) for v in versions(model_dir)
    ]
    return found


def versions(directory: str | Path) -> list[ModelVersion]:
    """Versioned models, oldest first. Names carry the second only, so two retrains within one
    second are ordered by when their files were written."""
    return sorted(
        list_versions(directory), key=lambda v: (v.created, v.path.stat().st_mtime_ns)
    )


def current_model(model_dir: str | Path) -> Path | None:
    """The model CURRENT names (the bundled model for "bundled"), else the newest versioned
    model, else None."""
    directory = Path(model_dir)
    pointer = directory / CURRENT
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if name == BUNDLED:
            return BUNDLED_MODEL
        named = directory / name
        if named.is_file():
            return named
    found = versions(directory)
    return found[-1].path if found else None


def rollback(model_dir: str | Path, version: str | None = None) -> tuple[Path, Any]:
    """Make an earlier model current again; returns (path, loaded model) for a hot swap.

    `version` is a file name, its stem, a unique sha8/stem prefix, or "bundled"/"0" (the
    bundled model, version 0); None means the version before the current one. The file is loaded (hash and allow-list checked) before CURRENT
    changes, so a damaged or tampered file is never made current.
    """
    directory = Path(model_dir)
    found = all_versions(directory)
    if version is None:
        at = next((i for i, v in enumerate(found) if v.current), 0)
        if at == 0:
            raise UserError(f"{directory}: no version older than the current one (the bundled model)")
        chosen = found[at - 1].path
    elif version in (BUNDLED, "0"):
        chosen = BUNDLED_MODEL
    else:
        wanted = version.removesuffix(".skops")
        matches = [v.path for v in found[1:] if v.name.startswith(wanted) or _sha8(v).startswith(wanted)]
        if len(matches) != 1:
            known = ", ".join(v.name for v in found)
            what = "no" if not matches else "more than one"
            raise UserError(f"{directory}: {what} model matches {version!r}; versions: {known}")
        chosen = matches[0]
    model = load_model(chosen)
    set_current(directory, chosen)
    return chosen, model


def rule_scorer(config: Config) -> RuleScorer:
    """The configured rules alone (no model file), with the configured threshold if any."""
    threshold = config.model.threshold if config.model.threshold is not None else 0.5
    return RuleScorer(RuleSet.from_config(config.rules), threshold)


def resolve(config: Config, name: str) -> Path:
    """A model named on the command line: "current" (what `model_path` picks), "bundled"/"0",
    a version (stem or unique prefix, or its sha8), or a path to a .skops file."""
    if name == "current":
        return model_path(config)
    if name in (BUNDLED, "0"):
        return BUNDLED_MODEL
    found = all_versions(config.model_dir_path)[1:]
    wanted = name.removesuffix(".skops")
    matches = [v.path for v in found if v.name.startswith(wanted) or _sha8(v).startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if Path(name).is_file():
        return Path(name)
    known = ", ".join(["bundled", *(v.name for v in found)])
    what = "no" if not matches else "more than one"
    raise UserError(f"{what} model matches {name!r}; versions: {known}")


def _sha8(version: Version) -> str:
    return version.name.rsplit("-", 1)[-1]


def model_path(config: Config, requested: str | Path | None = None) -> Path:
    """The model file the commands and the live view use (see the module docstring)."""
    if requested:
        return Path(requested)
    if config.model.path:
        return Path(config.model.path)
    if (Path(config.model_dir_path) / CURRENT).is_file():
        current = current_model(config.model_dir_path)
        if current is not None:
            return current
    return BUNDLED_MODEL


def load_detector(
    config: Config, requested: str | Path | None = None, warn: Warn | None = None
) -> tuple[Any, Path, dict[str, Any]]:
    """The detector `model_path` names, checked and loaded; library version differences from
    the training run are passed to `warn`."""
    path = model_path(config, requested)
    if path == BUNDLED_MODEL and not path.exists():
        raise ModelRefused(
            f"{path}: the bundled model is missing; train one with `flowtriage train` "
            "and pass it with --model"
        )
    detector = load_model(path)
    # Duck-typed so any Detector version qualifies; a bare sklearn estimator (which also has
    # a `score` method) does not.
    if not all(hasattr(detector, name) for name in ("score", "explain", "threshold")):
        raise ModelRefused(f"{path}: holds a {type(detector).__name__}, not a flowtriage detector")
    if hasattr(detector, "use_config"):
        detector.use_config(config)  # the site's [scope] and sampling, not the training site's
    if config.model.threshold is not None:
        detector.threshold = config.model.threshold
    meta = read_metadata(path)
    if warn is not None:
        for warning in version_warnings(meta):
            warn(f"warning: {path.name}: {warning}")
    return detector, path, meta


def load_scorer(config: Config, requested: str | Path | None = None, warn: Warn | None = None) -> Any:
    """The detector the batch commands would use (same checks and messages), or RuleScorer
    when no model was asked for and the bundled one is missing."""
    if model_path(config, requested) == BUNDLED_MODEL and not BUNDLED_MODEL.exists():
        return rule_scorer(config)
    detector, _path, _meta = load_detector(config, requested, warn)
    return detector
