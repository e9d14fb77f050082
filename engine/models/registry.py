"""Which model is current: the one place that decides it, loads it and checks it.

Order, first that applies: `--model`, `[model] path`, the version the model directory's
CURRENT file names (written when a retrain is accepted or a version is rolled back to), the
bundled model. With none of them present the scorer falls back to the rules alone.
Versioned models (`model-YYYYMMDD-HHMMSS-<sha8>.skops`) sit in the model directory for
retrain and rollback; the bundled model is version 0 and is never written.
"""

from __future__ import annotations

from collections.abc import Callable
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
Warn = Callable[[str], None]


def set_current(model_dir: str | Path, path: str | Path) -> None:
    """Name `path` in model_dir/CURRENT (atomically): the model a restart loads."""
    directory = Path(model_dir)
    tmp = directory / f".{CURRENT}.part"
    tmp.write_text(Path(path).name + "\n", encoding="utf-8")
    tmp.replace(directory / CURRENT)


def versions(directory: str | Path) -> list[ModelVersion]:
    """Versioned models, oldest first. Names carry the second only, so two retrains within one
    second are ordered by when their files were written."""
    return sorted(
        list_versions(directory), key=lambda v: (v.created, v.path.stat().st_mtime_ns)
    )


def current_model(model_dir: str | Path) -> Path | None:
    """The model CURRENT names, else the newest versioned model, else None."""
    directory = Path(model_dir)
    pointer = directory / CURRENT
    if pointer.is_file():
        named = directory / pointer.read_text(encoding="utf-8").strip()
        if named.is_file():
            return named
    found = versions(directory)
    return found[-1].path if found else None


def rollback(model_dir: str | Path, version: str | None = None) -> tuple[Path, Any]:
    """Make an earlier model current again; returns (path, loaded model) for a hot swap.

    `version` is a file name, its stem, or a unique sha8/stem prefix; None means the version
    before the current one. The file is loaded (hash and allow-list checked) before CURRENT
    changes, so a damaged or tampered file is never made current.
    """
    directory = Path(model_dir)
    found = versions(directory)
    if not found:
        raise UserError(f"{directory}: no versioned models to roll back to")
    if version is None:
        current = current_model(directory)
        names = [v.path.name for v in found]
        at = names.index(current.name) if current is not None and current.name in names else 0
        if at == 0:
            raise UserError(f"{directory}: no version older than the current one")
        chosen = found[at - 1].path
    else:
        wanted = version.removesuffix(".skops")
        matches = [
            v.path for v in found if v.path.stem.startswith(wanted) or v.sha8.startswith(wanted)
        ]
        if len(matches) != 1:
            known = ", ".join(v.path.stem for v in found)
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
