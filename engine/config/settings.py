"""Typed, strictly validated configuration read from TOML.

Precedence: an explicit --config FILE, else ./config.toml, else the user config dir. The
packaged defaults (the repo's config.toml shape) are the dataclass defaults below, so a user
file only needs the keys it changes. Unknown sections or keys are rejected with the file name,
because a misspelt key that silently does nothing is worse than an error.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "flowtriage"

# The closed vocabularies of the config, here so that every value is checked at load and the
# modules that act on them (tail, detector, outlier, label store, TUI) share one list.
OBSERVERS: tuple[str, ...] = ("native", "polling")
CLASSIFIERS: tuple[str, ...] = ("extratrees", "forest", "knn")
OUTLIERS: tuple[str, ...] = ("iforest", "knn", "abod", "hbos", "none")
LABEL_SCOPES: tuple[str, ...] = ("flow", "source", "vector")
CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Textual's built-in themes (textual is pinned exactly; tests/config checks this list against
# textual.theme.BUILTIN_THEMES), so a bad theme fails at load without importing the UI.
TUI_THEMES: tuple[str, ...] = (
    "ansi-dark", "ansi-light", "atom-one-dark", "atom-one-light", "catppuccin-frappe",
    "catppuccin-latte", "catppuccin-macchiato", "catppuccin-mocha", "dracula", "flexoki",
    "gruvbox", "monokai", "nord", "rose-pine", "rose-pine-dawn", "rose-pine-moon",
    "solarized-dark", "solarized-light", "textual-dark", "textual-light", "tokyo-night",
)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class IngestConfig:
    timezone: str = "local"
    max_decompressed_ratio: float = 500.0
    sampling: int = 0


@dataclass(frozen=True)
class WatchConfig:
    glob: str = "*"
    recursive: bool = False
    observer: str = "native"
    poll_interval: float = 1.0
    settle_seconds: float = 2.0
    state_db: str = ""
    retain_top: int = 5000
    retain_seconds: float = 900.0
    sources_max_pairs: int = 2_000_000
    batch_max_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""
    # None: the model's own threshold (chosen when it was trained); a number overrides it.
    # The one cut: a flow is flagged, and gets an attack verdict, at score >= threshold.
    threshold: float | None = None
    classifier: str = "forest"
    outlier: str = "iforest"
    outlier_percentile: float = 99.9


@dataclass(frozen=True)
class ScopeConfig:
    filter: str = "port 53"
    icmp_errors: bool = True
    prober_targets: int = 3


@dataclass(frozen=True)
class LabelsConfig:
    db: str = ""
    extra_classes: tuple[str, ...] = ()
    normal_scope: str = "vector"
    attack_scope: str = "flow"
    vector_digits: int = 3
    source_window_seconds: float = 300.0
    analyst_weight: float = 10.0
    holdout_fraction: float = 0.2
    model_dir: str = ""


@dataclass(frozen=True)
class TuiConfig:
    theme: str = "textual-dark"
    refresh_hz: float = 2.0
    nfcapd_dir: str = ""


@dataclass(frozen=True)
class RuleConfig:
    name: str
    label: str
    filter: str
    severity: float = 0.5


DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")


def _default_rules() -> tuple[RuleConfig, ...]:
    # The packaged defaults.toml is the same file as the repo's config.toml (a test keeps
    # them equal), so an installed flowtriage with no config file still has the five rules.
    with open(DEFAULTS_PATH, "rb") as fh:
        return tuple(RuleConfig(**r) for r in tomllib.load(fh)["rules"])


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    scope: ScopeConfig = field(default_factory=ScopeConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    tui: TuiConfig = field(default_factory=TuiConfig)
    keys: dict[str, str] = field(default_factory=dict)
    rules: tuple[RuleConfig, ...] = field(default_factory=_default_rules)
    source: Path | None = None  # the file this came from, for messages

    @property
    def data_dir(self) -> Path:
        return Path(platformdirs.user_data_dir(APP_NAME))

    @property
    def state_db_path(self) -> Path:
        return Path(self.watch.state_db) if self.watch.state_db else self.data_dir / "state.sqlite"

    @property
    def labels_db_path(self) -> Path:
        return Path(self.labels.db) if self.labels.db else self.data_dir / "labels.sqlite"

    @property
    def model_dir_path(self) -> Path:
        """Where retraining writes versioned model files (and the CURRENT pointer)."""
        return Path(self.labels.model_dir) if self.labels.model_dir else self.data_dir / "models"


_SECTIONS = {
    "ingest": IngestConfig,
    "watch": WatchConfig,
    "model": ModelConfig,
    "scope": ScopeConfig,
    "labels": LabelsConfig,
    "tui": TuiConfig,
}


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    values = {}
    for name, value in raw.items():
        default = fields[name].default
        if default is dataclasses.MISSING:  # required string fields of a rule
            expected: type = str
        elif default is None:  # optional numbers: absent means "not set"
            expected = float
        else:
            expected = type(default)
        if expected is tuple:
            if not isinstance(value, list):
                raise ConfigError(f"{where}.{name}: expected a list, got {type(value).__name__}")
            value = tuple(value)
        elif expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{where}.{name}: expected {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:  # a missing required key
        raise ConfigError(f"{where}: {exc}") from None


def parse_config(raw: dict[str, Any], source: Path | None = None) -> Config:
    where = str(source) if source else "config"
    unknown = sorted(set(raw) - set(_SECTIONS) - {"keys", "rules"})
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}")
    kwargs: dict[str, Any] = {"source": source}
    for name, cls in _SECTIONS.items():
        if name in raw:
            kwargs[name] = _build(cls, raw[name], f"{where} [{name}]")
            _check_values(name, kwargs[name], f"{where} [{name}]")
    if "keys" in raw:
        keys = raw["keys"]
        if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
            raise ConfigError(f"{where} [keys]: expected binding_id = \"key\" pairs")
        kwargs["keys"] = dict(keys)
    if "rules" in raw:
        if not isinstance(raw["rules"], list):
            raise ConfigError(f"{where}: [[rules]] must be an array of tables")
        kwargs["rules"] = tuple(
            _build(RuleConfig, r, f"{where} [[rules]] #{i + 1}") for i, r in enumerate(raw["rules"])
        )
        _check_rules(kwargs["rules"], where)
    return Config(**kwargs)


def rule_problem(name: str, label: str, filter_text: str, severity: float) -> str | None:
    """What is wrong with a rule, or None: the one definition of a usable rule, used at load
    and by engine.detect.rules.Rule. A bad filter's message carries its caret and position."""
    if not name or "," in name:
        return "a rule name must be non-empty and contain no comma"
    if not label:
        return "a rule needs a label"
    # Severity sits on the same 0..1 scale as a detector score, so the two can be combined.
    if not (
        isinstance(severity, int | float) and math.isfinite(severity) and 0 <= severity <= 1
    ):
        return f"severity must be between 0 and 1, got {severity!r}"
    if not filter_text.strip():
        # nfdump reads an empty filter as "match everything": never what a rule means.
        return "empty filter"
    return _filter_problem(filter_text)


def _filter_problem(text: str) -> str | None:
    """A filter that does not compile: the compiler's message, with its caret and position."""
    # Late (start-up time): the filter compiler imports polars (~0.1 s), which `flowtriage
    # --help` and a config without filters to check must not pay for.
    from engine.filters.language import FilterError, compile_filter

    try:
        compile_filter(text)
    except FilterError as exc:
        return f"bad filter: {exc}"
    return None


def _check_rules(rules: tuple[RuleConfig, ...], where: str) -> None:
    """Compile every rule now, so a bad filter fails at load with its rule and position."""
    seen: set[str] = set()
    for number, rc in enumerate(rules, start=1):
        problem = rule_problem(rc.name, rc.label, rc.filter, rc.severity)
        if problem is not None:
            raise ConfigError(f"{where} [[rules]] #{number}: rule {rc.name!r}: {problem}")
        if rc.name in seen:
            raise ConfigError(f"{where} [[rules]] #{number}: rule {rc.name!r}: duplicate rule name")
        seen.add(rc.name)


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"expected one of {', '.join(choices)}"


def _theme(v: str) -> str | None:
    return None if v in TUI_THEMES else f"not a theme; choose one of {', '.join(TUI_THEMES)}"


def _positive(v: float) -> str | None:
    return None if math.isfinite(v) and v > 0 else "must be a positive number"


def _non_negative(v: float) -> str | None:
    return None if math.isfinite(v) and v >= 0 else "must be zero or more"


def _unit(v: float) -> str | None:
    return None if math.isfinite(v) and 0 <= v <= 1 else "must be between 0 and 1"


def _open_unit(v: float) -> str | None:
    return None if math.isfinite(v) and 0 < v < 1 else "must be between 0 and 1 (exclusive)"


def _percentile(v: float) -> str | None:
    return None if math.isfinite(v) and 0 < v <= 100 else "must be in (0, 100]"


def _timezone(v: str) -> str | None:
    if v == "local":
        return None
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "not an IANA time zone (e.g. UTC, Europe/Berlin) or \"local\""
    return None


def _class_names(v: tuple[str, ...]) -> str | None:
    bad = [c for c in v if not isinstance(c, str) or not CLASS_NAME.match(c)]
    return f"invalid class name(s) {', '.join(map(repr, bad))} (lower case, digits, _)" if bad else None


def _non_empty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def _ratio(v: float) -> str | None:
    return None if math.isfinite(v) and v >= 1 else "must be a number of at least 1"


def _database(v: str) -> str | None:
    """A database file ("" = the default): not a directory."""
    return "is a directory; give a file name" if v and Path(v).expanduser().is_dir() else None


def _scope_filter(v: str) -> str | None:
    """A scope filter compiles (its message carries the caret and position); "any" scores
    every flow."""
    if not v.strip():
        return 'empty filter (use "any" to give every flow a DNS verdict)'
    return _filter_problem(v)


def _whole(v: int) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "expected a whole number >= 0"


# section -> key -> check; every value read from a file passes its check or load fails
_CHECKS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "ingest": {"timezone": _timezone, "max_decompressed_ratio": _ratio, "sampling": _whole},
    "watch": {
        "state_db": _database, "glob": _non_empty, "observer": _one_of(OBSERVERS), "poll_interval": _positive,
        "settle_seconds": _non_negative, "retain_top": _positive, "retain_seconds": _positive,
        "sources_max_pairs": _positive, "batch_max_bytes": _positive,
    },
    "model": {
        "threshold": _unit, "classifier": _one_of(CLASSIFIERS), "outlier": _one_of(OUTLIERS),
        "outlier_percentile": _percentile,
    },
    "labels": {
        "db": _database, "extra_classes": _class_names, "normal_scope": _one_of(LABEL_SCOPES),
        "attack_scope": _one_of(LABEL_SCOPES), "vector_digits": _non_negative,
        "source_window_seconds": _positive, "analyst_weight": _positive,
        "holdout_fraction": _open_unit,
    },
    "scope": {"filter": _scope_filter, "prober_targets": _whole},
    "tui": {"theme": _theme, "refresh_hz": _positive},
}


def _check_values(section: str, value: Any, where: str) -> None:
    for key, check in _CHECKS.get(section, {}).items():
        if getattr(value, key) is None:  # an optional value left unset
            continue
        problem = check(getattr(value, key))
        if problem is not None:
            raise ConfigError(f"{where}.{key} = {getattr(value, key)!r}: {problem}")


def default_config_path() -> Path | None:
    for candidate in (Path.cwd() / "config.toml", Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | Path | None = None) -> Config:
    """Load `path`, or the first default location that exists, or the built-in defaults."""
    chosen = Path(path) if path else default_config_path()
    if chosen is None:
        return Config()
    try:
        with open(chosen, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{chosen}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{chosen}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{chosen}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{chosen}: not a text (UTF-8 TOML) file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: {exc}") from None
    return parse_config(raw, chosen)
