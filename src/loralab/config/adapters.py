"""Each entry of `adapters:` resolved into a plain single-adapter Config: the top-level
sections with the entry's keys merged in (nested mappings merge, lists and values replace),
its `lora`, and `name` = the entry's name (the entries themselves:
loralab.config.adapter_entries)."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from loralab.config.messages import format_validation_error
from loralab.config.section import Section
from loralab.errors import ConfigError


def merge(base: dict[str, Any], keys: dict[str, Any]) -> None:
    """`keys` into `base`: nested mappings merge, everything else replaces."""
    for key, value in keys.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def adapter_configs(config: Section) -> list[tuple[str, Section]]:
    """(name, single-adapter Config) per entry of a Config with `adapters:`; ConfigError
    naming the entry when the merged sections do not fit together."""
    schema = type(config)
    top = config.model_dump(mode="json")
    top.pop("adapters", None)
    out = []
    for i, entry in enumerate(config.adapters):
        raw = copy.deepcopy(top)
        raw["name"] = entry.name
        raw["lora"] = entry.lora.model_dump(mode="json")
        for section in ("data", "training", "eval"):
            merge(raw.setdefault(section, {}),
                  getattr(entry, section).model_dump(mode="json", exclude_unset=True))
        try:
            resolved = schema.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"adapter {entry.name!r} (adapters.{i}, its keys merged over the "
                              f"top-level sections): "
                              f"{format_validation_error(exc, schema)}") from None
        out.append((entry.name, resolved))
    return out
