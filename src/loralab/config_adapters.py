"""Several adapters on one base model in one config (`adapters:`), and configs that read the
files `loralab data export` wrote (`--data DIR`).

    adapters:
      - name: code                       # identifier-like, unique
        lora: {preset: attention, r: 16}  # the adapter's own LoRA settings (no top-level lora:)
        data: {response_template: ...}    # keys merged over the top-level data section
        training: {learning_rate: 1e-3}   # ... and over training / eval
      - name: docstring
        lora: {preset: mlp}

Each entry resolves to a plain single-adapter Config (`adapter_configs`): the top-level
sections with the entry's keys merged in (nested mappings merge, lists and values replace),
its `lora`, and `name` = the entry's name. Both `lora:` and `adapters:` in one config is
refused, naming the keys.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loralab.config_errors import format_validation_error
from loralab.errors import ConfigError, UserError

if TYPE_CHECKING:
    from loralab.config import Config

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# folders of a multi-adapter run folder, and PEFT's name for a single adapter
RESERVED = {"adapters", "checkpoint", "default"}
# loaded once for every adapter: they cannot differ between entries
BASE_TRAINING_KEYS = ("precision", "gradient_checkpointing")
SPLITS = ("train", "validation", "test")
EXPORT_MANIFEST = "export.json"


def check_adapter_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an identifier-like name (a letter, then letters, "
                         "digits or _, at most 64)")
    if name in RESERVED:
        raise ValueError(f"{name!r} is reserved (the names {', '.join(sorted(RESERVED))} are "
                         "folders of a multi-adapter run or PEFT's own); choose another")
    if name in "lora_":  # PEFT re-initialises adapters whose name is part of its key prefix
        raise ValueError(f"{name!r} is part of PEFT's parameter prefix 'lora_'; choose a "
                         "longer name")
    return name


def check_adapters(config: Config) -> None:
    """The refusals of a multi-adapter config that the entries cannot check alone."""
    if "lora" in config.model_fields_set:
        given = ", ".join(f"lora.{k}" for k in sorted(config.lora.model_fields_set)) or "lora"
        raise ValueError(f"give either lora: (one adapter) or adapters: (several, each with its "
                         f"own adapters[i].lora), not both; this config sets {given} and "
                         f"adapters")
    if config.model.task != "causal_lm":
        raise ValueError(f"adapters: several adapters on one base are for model.task causal_lm "
                         f"(an encoder's head is one module sized by its labels); train one "
                         f"config per adapter for model.task {config.model.task}")
    names = [entry.name for entry in config.adapters]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"adapters: the name {repeated[0]!r} is used by "
                         f"{names.count(repeated[0])} entries; give each adapter its own name")
    for i, entry in enumerate(config.adapters):
        for key in BASE_TRAINING_KEYS:
            if key in entry.training.model_fields_set:
                raise ValueError(f"adapters.{i}.training.{key}: the base model is loaded once "
                                 f"for every adapter; set training.{key} at the top level")
    adapter_configs(config)


def merge(base: dict[str, Any], keys: dict[str, Any]) -> None:
    """`keys` into `base`: nested mappings merge, everything else replaces."""
    for key, value in keys.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def adapter_configs(config: Config) -> list[tuple[str, Config]]:
    """(name, single-adapter Config) per entry; ConfigError naming the entry when the merged
    sections do not fit together."""
    from loralab.config import Config

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
            resolved = Config.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"adapter {entry.name!r} (adapters.{i}, its keys merged over the "
                              f"top-level sections): "
                              f"{format_validation_error(exc, Config)}") from None
        out.append((entry.name, resolved))
    return out


# --------------------------------------------------------------------------- exported data


def exported_files(folder: Path) -> dict[str, Path]:
    """{split: file} of one exported data folder (train required)."""
    files = {split: folder / f"{split}.jsonl" for split in SPLITS
             if (folder / f"{split}.jsonl").is_file()}
    if "train" not in files:
        raise UserError(f"{folder} holds no train.jsonl; give --data the --out folder of "
                        "`loralab data export`")
    return files


def point_at_export(data: Any, folder: Path) -> None:
    """Make a data section read the exported files of `folder` as plain JSONL, keeping its
    prompt format, metrics, filter and sampling (re-applying them changes nothing)."""
    from loralab.config import ColumnsConfig

    files = exported_files(folder)
    for split in SPLITS:
        setattr(data, split, str(files[split].resolve()) if split in files else None)
    data.hub = None
    data.hub_config = None
    data.format = "jsonl"
    data.columns = ColumnsConfig()
    data.splits = {}


def with_exported_data(config: Config, folder: str | Path) -> Config:
    """`config` reading every adapter's (or its one) data from a `loralab data export` folder:
    DIR/<adapter>/{train,validation,test}.jsonl, or DIR/{...}.jsonl for a single config."""
    from loralab.config import validate_config

    root = Path(folder)
    if not (root / EXPORT_MANIFEST).is_file():
        raise UserError(f"--data {root}: not a folder written by `loralab data export` (no "
                        f"{EXPORT_MANIFEST})")
    config = config.model_copy(deep=True)
    if config.adapters:
        for entry in config.adapters:
            point_at_export(entry.data, root / entry.name)
    else:
        point_at_export(config.data, root)
    return validate_config(config.model_dump(mode="json"))
