"""Adapter folders: PEFT's on-disk format plus the tokenizer, label mapping and loralab config.

Folder layout (everything but the last two files is plain PEFT / transformers):
  adapter_config.json, adapter_model.safetensors   PEFT (head included via modules_to_save)
  tokenizer files                                  transformers
  label_mapping.json                               task, labels, id2label / label2id, base model
  loralab_config.yaml                              the resolved config the adapter was trained with
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from peft import PeftConfig, PeftModel

from loralab.atomic import atomic_directory, atomic_write_text, named_errors
from loralab.config import Config, dump_config, parse_yaml
from loralab.errors import UserError
from loralab.models.placement import Placement
from loralab.models.sources import model_load_error, resolve_model_source

LABELS_FILE = "label_mapping.json"
CONFIG_FILE = "loralab_config.yaml"


def adapter_folder_name(config: Config, model_type: str) -> str:
    return f"lora_{config.run_name}_{model_type}_r{config.lora.r}"


def save_adapter(model: PeftModel, tokenizer: Any, config: Config, labels: list[str] | None,
                 model_type: str, path: Path, inputs: list[str] | None = None) -> Path:
    """Write the adapter folder atomically (a killed run never leaves half an adapter).
    `inputs`: the input fields the adapter was trained on (e.g. text + text_pair)."""
    with named_errors(path), atomic_directory(path) as tmp:
        model.save_pretrained(tmp, save_embedding_layers=False)  # embeddings are frozen
        tokenizer.save_pretrained(tmp)
        write_task_files(tmp, config, labels, model_type, inputs)
    return path


def write_task_files(folder: Path, config: Config, labels: list[str] | None,
                     model_type: str, inputs: list[str] | None = None) -> None:
    """label_mapping.json and loralab_config.yaml (adapter folders and export folders)."""
    mapping = {
        "task": config.model.task,
        "base_model": config.model.name,
        "model_type": model_type,
        "max_length": config.model.max_length,
        "labels": labels,
        "id2label": {str(i): n for i, n in enumerate(labels)} if labels else None,
        "label2id": {n: i for i, n in enumerate(labels)} if labels else None,
        "inputs": inputs,
    }
    atomic_write_text(folder / LABELS_FILE, json.dumps(mapping, indent=2) + "\n")
    atomic_write_text(folder / CONFIG_FILE, dump_config(config))


@dataclass
class AdapterFiles:
    """What an adapter folder says about itself (a loralab folder or a plain PEFT one)."""
    path: Path
    peft_config: PeftConfig
    config: dict[str, Any]       # loralab_config.yaml, or {} for a plain PEFT folder
    mapping: dict[str, Any]      # label_mapping.json, or {}

    @property
    def base_model(self) -> str:
        return self.mapping.get("base_model") or self.peft_config.base_model_name_or_path


def read_adapter_files(path: Path) -> AdapterFiles:
    if not (path / "adapter_config.json").is_file():
        raise UserError(f"{path} is not an adapter folder (no adapter_config.json)")
    try:
        peft_config = PeftConfig.from_pretrained(str(path))
        raw: dict[str, Any] = {}
        if (path / CONFIG_FILE).is_file():
            raw = parse_yaml((path / CONFIG_FILE).read_text(encoding="utf-8")) or {}
        mapping = {}
        if (path / LABELS_FILE).is_file():
            mapping = json.loads((path / LABELS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and PEFT's own checks included
        raise UserError(f"{path}: unreadable adapter folder: {exc}") from None
    return AdapterFiles(path, peft_config, raw, mapping)


def head_rows(path: Path) -> int | None:
    """Output rows of the classifier saved in a (plain PEFT) adapter, or None without one."""
    from safetensors import safe_open

    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    with safe_open(str(weights), "pt") as handle:
        for key in handle.keys():
            if key.endswith("classifier.weight") or key.endswith("classifier.out_proj.weight"):
                return handle.get_slice(key).get_shape()[0]
    return None


def attach_adapter(base: torch.nn.Module, path: Path) -> PeftModel:
    """The adapter folder's LoRA (and modules_to_save head) on `base`, for inference."""
    return PeftModel.from_pretrained(base, str(path))


def load_encoder(name: str, auto_class: str, head: dict[str, Any], placement: Placement, *,
                 trust_remote_code: bool = False) -> torch.nn.Module:
    """A pretrained encoder with a (new) task head sized by `head`, on `placement` (fp32 unless
    the placement names a dtype)."""
    auto_cls = getattr(transformers, auto_class)
    try:
        model = auto_cls.from_pretrained(resolve_model_source(name),
                                         dtype=placement.dtype or torch.float32,
                                         trust_remote_code=trust_remote_code, **head)
    except (OSError, ValueError) as exc:
        raise model_load_error(name, exc) from None
    return model.to(placement.device)
