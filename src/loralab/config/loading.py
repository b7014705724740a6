"""Loading a config: a YAML file or a section `FILE:KEY` of a bigger one (such as DVC's
params.yaml), `--set-from` and dotted `--set` overrides, validation with messages that name
the key path, data paths made absolute, and the YAML dump `loralab config show` prints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from loralab.config.messages import format_validation_error
from loralab.config.schema import Config
from loralab.config.sections import DataConfig
from loralab.config.yaml_loader import (
    apply_override,
    overrides_from,
    read_section,
    read_yaml_mapping,
    set_dotted,
    split_section,
)
from loralab.errors import ConfigError


def load_config(path: str | Path | None, overrides: list[str] | None = None, *,
                set_from: list[str] | None = None) -> Config:
    """Read a YAML config (or start from defaults), apply `a.b=value` overrides, validate.

    `path` is a file, or a section of one: `params.yaml:train` is the mapping under `train`
    (DVC's `file:key` notation). `set_from` names mappings of dotted overrides
    (`params.yaml:profiles.smoke.train`), applied before `overrides`. Relative data paths are
    resolved against the config file's folder, so a config works from any working directory;
    `$VARS` and `~` in paths are expanded.
    """
    raw: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        raw, file = read_config_mapping(path)
        base_dir = file.resolve().parent
    for spec in set_from or []:
        for key, value in overrides_from(spec):
            set_dotted(raw, key, value, source=f"--set-from {spec}: ")
    for item in overrides or []:
        apply_override(raw, item)
    config = validate_config(raw)
    resolve_data_paths(config, base_dir)
    return config


def read_config_mapping(spec: str | Path) -> tuple[dict[str, Any], Path]:
    """The config mapping of a file or `FILE:KEY` section, and the file."""
    if Path(spec).is_dir():
        raise ConfigError(f"{spec} is a folder, not a config file; give the YAML file")
    file, key = split_section(spec)
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    if key is None:
        return read_yaml_mapping(file), file
    value, _ = read_section(spec)
    if not isinstance(value, dict):
        raise ConfigError(f"{spec}: expected a mapping of config sections, got "
                          f"{type(value).__name__}")
    return value, file


def validate_config(raw: dict[str, Any]) -> Config:
    """The Config of a raw mapping; ConfigError naming the key path. A multi-adapter config
    is also checked entry by entry, each merged over the top-level sections."""
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, Config)) from None
    if config.adapters:
        config.adapter_configs()
    return config


def resolve_data_paths(config: Config, base_dir: Path) -> None:
    for data in [config.data, *(entry.data for entry in config.adapters)]:
        resolve_section_paths(data, base_dir)
    name = config.model.name
    expanded = os.path.expanduser(os.path.expandvars(name))
    if name.startswith((".", "/", "~", "$")):
        config.model.name = resolve_path(expanded, base_dir)


def resolve_section_paths(data: DataConfig, base_dir: Path) -> None:
    """A data section's paths, absolute (only the keys it sets: an adapter entry's
    unset keys stay unset)."""
    for split in ("train", "validation", "test", "schema_file"):
        value = getattr(data, split)
        if value:
            setattr(data, split, resolve_path(value, base_dir))
    if data.extra_train:
        data.extra_train = [resolve_path(p, base_dir) for p in data.extra_train]


def resolve_path(value: str, base_dir: Path) -> str:
    path = Path(os.path.expanduser(os.path.expandvars(value)))
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
