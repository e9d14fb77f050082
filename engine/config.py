"""Typed, strictly validated configuration read from TOML.

Precedence: an explicit --config FILE, else ./config.toml, else the user config dir. The
packaged defaults (the repo's config.toml shape) are the dataclass defaults below, so a user
file only needs the keys it changes. Unknown sections or keys are rejected with the file name,
because a misspelt key that silently does nothing is worse than an error.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "flowtriage"


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class IngestConfig:
    timezone: str = "local"


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
    threshold: float = 0.5
    classifier: str = "forest"
    outlier: str = "iforest"
    outlier_percentile: float = 99.9


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


def _check_rules(rules: tuple[RuleConfig, ...], where: str) -> None:
    """Compile every rule now, so a bad filter fails at load with its rule and position."""
    from engine.rules import Rule, RuleError  # imports polars: only when rules are configured

    seen: set[str] = set()
    for number, rc in enumerate(rules, start=1):
        try:
            Rule.from_config(rc)
        except RuleError as exc:
            raise ConfigError(f"{where} [[rules]] #{number}: {exc}") from None
        if rc.name in seen:
            raise ConfigError(f"{where} [[rules]] #{number}: rule {rc.name!r}: duplicate rule name")
        seen.add(rc.name)


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
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: {exc}") from None
    return parse_config(raw, chosen)
