"""Adapter folders: PEFT's on-disk format plus the tokenizer, label mapping and loralab config.

Folder layout (everything but the last two files is plain PEFT / transformers):
  adapter_config.json, adapter_model.safetensors   PEFT (head included via modules_to_save)
  tokenizer files                                  transformers
  label_mapping.json                               task, labels, id2label / label2id, base model
  loralab_config.yaml                              the resolved config the adapter was trained with
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from peft import PeftConfig, PeftModel

from loralab.atomic import atomic_directory, atomic_write_text, named_errors
from loralab.config import Config, dump_config, parse_yaml
from loralab.errors import UserError
from loralab.models.adapter_check import WEIGHTS_FILE, check_adapter_weights
from loralab.models.placement import Placement
from loralab.models.sources import model_load_error, resolve_model_source

LABELS_FILE = "label_mapping.json"
CONFIG_FILE = "loralab_config.yaml"
MULTI_FILE = "multi_adapter.json"   # beside the sub-folders of a multi-adapter folder


def adapter_folder_name(config: Config, model_type: str) -> str:
    return f"lora_{config.run_name}_{model_type}_r{config.lora.r}"


def save_adapter(model: PeftModel, tokenizer: Any, config: Config, labels: list[str] | None,
                 model_type: str, path: Path, inputs: list[str] | None = None,
                 adapter_name: str | None = None) -> Path:
    """Write the adapter folder atomically (a killed run never leaves half an adapter).
    `inputs`: the input fields the adapter was trained on (e.g. text + text_pair).
    `adapter_name`: which adapter of a multi-adapter model; it is written as a single-adapter
    folder (PEFT's files at the folder root, as any loralab adapter)."""
    with named_errors(path), atomic_directory(path) as tmp:
        save_peft_files(model, tmp, adapter_name)
        write_adapter_metadata(tmp, tokenizer, config, labels, model_type, inputs)
    return path


def save_peft_files(model: PeftModel, folder: Path, adapter_name: str | None) -> None:
    """PEFT's adapter_config.json + weights of one adapter at the root of `folder`."""
    if adapter_name is None or adapter_name == "default":
        model.save_pretrained(folder, save_embedding_layers=False)  # embeddings are frozen
        return
    model.save_pretrained(folder, selected_adapters=[adapter_name], save_embedding_layers=False)
    for item in (folder / adapter_name).iterdir():  # PEFT puts named adapters in sub-folders
        item.replace(folder / item.name)
    (folder / adapter_name).rmdir()


def save_multi_adapter(model: PeftModel, tokenizer: Any, adapters: list[dict[str, Any]],
                       model_type: str, path: Path) -> Path:
    """PEFT's multi-adapter folder, atomically: `save_pretrained` of every adapter (one
    sub-folder each, PEFT's layout), each sub-folder completed with the tokenizer, label
    mapping and loralab config, and MULTI_FILE naming the adapters in order. `adapters`:
    {"name", "config", "labels", "inputs"} per adapter."""
    names = [a["name"] for a in adapters]
    with named_errors(path), atomic_directory(path) as tmp:
        model.save_pretrained(tmp, selected_adapters=names, save_embedding_layers=False)
        for adapter in adapters:
            write_adapter_metadata(tmp / adapter["name"], tokenizer, adapter["config"],
                                   adapter["labels"], model_type, adapter["inputs"])
        first = adapters[0]["config"]
        atomic_write_text(tmp / MULTI_FILE, json.dumps(
            {"adapters": names, "base_model": first.model.name, "task": first.model.task},
            indent=2) + "\n")
    return path


def write_adapter_metadata(folder: Path, tokenizer: Any, config: Config,
                           labels: list[str] | None, model_type: str,
                           inputs: list[str] | None) -> None:
    """The tokenizer, label_mapping.json and loralab_config.yaml beside PEFT's files."""
    tokenizer.save_pretrained(folder)
    write_task_files(folder, config, labels, model_type, inputs)


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
    check_adapter_weights(path)
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
    check_adapter_weights(path)
    with weights_that_fit(path):
        return PeftModel.from_pretrained(base, str(path))


def attach_adapters(base: torch.nn.Module, folders: dict[str, Path]) -> PeftModel:
    """Every adapter folder on the one `base`, under its name (`PeftModel.from_pretrained`
    for the first, `load_adapter(..., adapter_name=)` for the others); the first is active."""
    items = list(folders.items())
    for _, folder in items:
        check_adapter_weights(folder)
    with weights_that_fit(items[0][1]):
        model = PeftModel.from_pretrained(base, str(items[0][1]), adapter_name=items[0][0])
    for name, folder in items[1:]:
        with weights_that_fit(folder):
            model.load_adapter(str(folder), adapter_name=name)
    model.set_adapter(items[0][0])
    return model


@contextmanager
def weights_that_fit(path: Path) -> Iterator[None]:
    """torch's "size mismatch" (weights saved for another base model's layer sizes) as one
    line naming the weights file."""
    try:
        yield
    except RuntimeError as exc:
        if "size mismatch" not in str(exc):
            raise
        detail = next((line.strip() for line in str(exc).splitlines()
                       if "size mismatch" in line), "size mismatch")
        raise UserError(f"{path / WEIGHTS_FILE}: the weights do not fit the base model "
                        f"({detail})") from None


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
