"""One entry of `adapters:` (several adapters on one base model in one config), and the
refusals an entry or the list of entries can check before the entries are resolved.

    adapters:
      - name: code                       # identifier-like, unique
        lora: {preset: attention, r: 16}  # the adapter's own LoRA settings (no top-level lora:)
        data: {response_template: ...}    # keys merged over the top-level data section
        training: {learning_rate: 1e-3}   # ... and over training / eval
      - name: docstring
        lora: {preset: mlp}

Resolving each entry into a plain single-adapter Config is loralab.config.adapters.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_serializer

from loralab.config.section import Section
from loralab.config.sections import DataConfig, EvalConfig, LoraConfig, TrainingConfig

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# folders of a multi-adapter run folder, and PEFT's name for a single adapter
RESERVED = {"adapters", "checkpoint", "default"}
# loaded once for every adapter: they cannot differ between entries
BASE_TRAINING_KEYS = ("precision", "gradient_checkpointing")


class TrainingOverrides(TrainingConfig):
    """An adapter entry's `training:` keys, checked together with the top-level ones once
    merged (eval_steps may come from the top level)."""

    def _steps_need_eval_steps(self) -> TrainingOverrides:  # the merged config checks it
        return self


class AdapterEntry(Section):
    """One entry of `adapters:`: its own LoRA settings, and keys of data / training / eval
    merged over the top-level sections (only the keys given here)."""
    name: str
    lora: LoraConfig = Field(default_factory=LoraConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingOverrides = Field(default_factory=TrainingOverrides)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        return check_adapter_name(name)

    @model_serializer(mode="wrap")
    def _given_keys_only(self, handler: Any, info: Any) -> dict[str, Any]:
        """The merged sections as written (a dump reloads to the same config)."""
        out = handler(self)
        for section in ("data", "training", "eval"):
            out[section] = getattr(self, section).model_dump(mode=info.mode,
                                                             exclude_unset=True)
        return out


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


def check_adapters(config: Any) -> None:
    """The refusals of a multi-adapter config (a Config with `adapters:`) that the entries
    cannot check alone; loralab.config.adapters checks each entry merged over the top level."""
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
