"""Adapter folders for inference: what task an adapter is, and the model it loads into.

    load_adapter(path, device="cpu")   -> LoadedAdapter(model, tokenizer, task, labels, config)
    load_base(config)                  -> the base model alone (no adapter), same shape

A loralab adapter folder names its task and labels (label_mapping.json) and its training
config (loralab_config.yaml); a plain PEFT folder trained elsewhere is read from its
adapter_config.json (task type, base model) and the saved head's size (labels LABEL_0 ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from loralab.config import Config, validate_config
from loralab.errors import UserError
from loralab.models.adapter_io import MULTI_FILE, AdapterFiles, head_rows, read_adapter_files
from loralab.models.placement import Placement
from loralab.tasks.base import Task
from loralab.tasks.task_registry import TASKS, get_task

MULTI_FOLDER = "adapters"   # the multi-adapter folder inside a run of several adapters


@dataclass
class LoadedAdapter:
    model: torch.nn.Module
    tokenizer: Any
    task: Task
    labels: list[str] | None
    config: Config
    path: Path | None = None   # None for a base model loaded alone
    inputs: list[str] | None = None   # the input fields it was trained on, when recorded


def adapter_task_name(files: AdapterFiles) -> str:
    """The task of an adapter folder: its label mapping's, else the task whose PEFT task type
    (and head size) matches a plain PEFT folder's."""
    if files.mapping.get("task"):
        return files.mapping["task"]
    peft_type = str(files.peft_config.task_type)
    rows = head_rows(files.path)
    for name, cls in TASKS.items():
        if cls.peft_task_type == peft_type and cls().head_rows_match(rows):
            return name
    raise UserError(f"{files.path}: cannot tell the task (adapter task_type {peft_type!r}); "
                    "give --config with model.task")


def adapter_labels(files: AdapterFiles, task: Task) -> list[str] | None:
    """The label mapping's names; for a plain PEFT classifier LABEL_i sized by its head."""
    if files.mapping:
        return files.mapping.get("labels")
    rows = head_rows(files.path)
    return [f"LABEL_{i}" for i in range(rows)] if rows and rows > 1 else None


def read_adapter_metadata(path: str | Path) -> tuple[Config, str, list[str] | None]:
    """(config, task name, labels) of an adapter folder — loralab's own or plain PEFT's."""
    files = read_adapter_files(Path(path))
    task_name = adapter_task_name(files)
    raw = dict(files.config)
    raw["model"] = {**raw.get("model", {}), "task": task_name}
    raw["model"].setdefault("name", files.base_model)
    config = validate_config(raw)
    return config, task_name, adapter_labels(files, get_task(task_name, config))


def load_adapter(path: str | Path, config: Config | None = None, *, device: str = "auto",
                 dtype: torch.dtype | None = None) -> LoadedAdapter:
    """Base model + head + adapter, in eval mode, on `device` (auto: the GPU when there is
    one) in `dtype` (default: the task's rule, see loralab.models.placement). `config`
    replaces the stored one for encoding and decoding (the model loads from the stored one)."""
    path = Path(path)
    stored, task_name, labels = read_adapter_metadata(path)
    config = config or stored
    task = get_task(task_name, config)
    model, tokenizer = task.load_model(stored, labels, path, Placement.resolve(device, dtype))
    inputs = read_adapter_files(path).mapping.get("inputs")
    return LoadedAdapter(model, tokenizer, task, labels, config, path, inputs)


def load_base(config: Config, *, device: str = "auto",
              dtype: torch.dtype | None = None) -> LoadedAdapter:
    """The base model of `config` alone, for tasks whose base model answers by itself."""
    task = get_task(config.model.task, config)
    if not task.base_model_answers:
        raise UserError(f"a {task.name} base model has no trained head to answer with; "
                        "evaluate an adapter folder instead")
    model, tokenizer = task.load_model(config, None, None, Placement.resolve(device, dtype))
    return LoadedAdapter(model, tokenizer, task, None, config, None)


# --------------------------------------------------------------------------- several adapters


@dataclass
class AdapterSet:
    """Several adapters on one loaded base model: `use(name)` switches with `set_adapter`
    (no reload) and returns that adapter as a LoadedAdapter sharing the model."""
    model: torch.nn.Module
    tokenizer: Any
    adapters: dict[str, LoadedAdapter]
    path: Path

    def use(self, name: str) -> LoadedAdapter:
        if name not in self.adapters:
            raise UserError(f"{self.path} has no adapter {name!r}; it holds: "
                            f"{', '.join(self.adapters)}")
        self.model.set_adapter(name)
        return self.adapters[name]


def adapter_set_folders(path: str | Path) -> dict[str, Path] | None:
    """{name: folder} of a multi-adapter folder (its multi_adapter.json, or sub-folders that
    are adapter folders, PEFT's layout) or of a run folder holding one in `adapters/`; None
    for a single adapter folder or a folder without adapters."""
    path = Path(path)
    if (path / MULTI_FOLDER / MULTI_FILE).is_file():
        path = path / MULTI_FOLDER
    if (path / MULTI_FILE).is_file():
        try:
            names = json.loads((path / MULTI_FILE).read_text(encoding="utf-8"))["adapters"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path / MULTI_FILE}: unreadable ({exc})") from None
        return {str(name): path / str(name) for name in names}
    if not path.is_dir() or (path / "adapter_config.json").is_file():
        return None
    found = {p.name: p for p in sorted(path.iterdir())
             if p.is_dir() and (p / "adapter_config.json").is_file()}
    return found or None


def load_adapter_set(path: str | Path, *, device: str = "auto",
                     dtype: torch.dtype | None = None) -> AdapterSet:
    """Every adapter of a multi-adapter folder on its base model, loaded once."""
    path = Path(path)
    folders = adapter_set_folders(path)
    if folders is None:
        raise UserError(f"{path} is not a multi-adapter folder (a run of a config with "
                        "adapters:, its adapters/ folder, or a folder of adapter folders)")
    metadata = {name: read_adapter_metadata(folder) for name, folder in folders.items()}
    first_name, (first, task_name, _) = next(iter(metadata.items()))
    for name, (config, other_task, _) in metadata.items():
        if other_task != task_name or base_of(config) != base_of(first):
            raise UserError(f"{path}: adapters {first_name!r} and {name!r} have different "
                            f"base models or tasks ({first.model.name} {task_name} vs "
                            f"{config.model.name} {other_task}); they cannot share one")
    task = get_task(task_name, first)
    model, tokenizer = task.load_adapters(first, folders, Placement.resolve(device, dtype))
    adapters = {name: LoadedAdapter(model, tokenizer, get_task(task_name, config), labels,
                                    config, folders[name],
                                    read_adapter_files(folders[name]).mapping.get("inputs"))
                for name, (config, _, labels) in metadata.items()}
    return AdapterSet(model, tokenizer, adapters, path)


def base_of(config: Config) -> tuple[Any, ...]:
    model = config.model
    return model.name, model.gguf_file, model.revision, model.quantization


def serving_base_config(name: str) -> Config:
    """A config for a base model served alone (`loralab serve --base NAME`): causal_lm for a
    causal LM (a GGUF file, or an architecture the registry knows as causal), else the
    default encoder task (its embeddings)."""
    from loralab.models.architectures import CAUSAL_ARCHITECTURES
    from loralab.models.causal import causal_source

    causal = validate_config({"model": {"name": name, "task": "causal_lm"}})
    if causal_source(causal)[1] is not None:
        return causal
    import transformers

    from loralab.models.sources import model_load_error, resolve_model_source

    try:
        model_type = transformers.AutoConfig.from_pretrained(resolve_model_source(name)).model_type
    except (OSError, ValueError) as exc:
        raise model_load_error(name, exc) from None
    return causal if model_type in CAUSAL_ARCHITECTURES else validate_config(
        {"model": {"name": name}})
