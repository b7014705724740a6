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

from loralab.atomic import atomic_directory, atomic_write_text
from loralab.config import Config, dump_config, parse_yaml, validate_config
from loralab.errors import UserError
from loralab.models.build import head_kwargs
from loralab.models.sources import model_load_error, resolve_model_source
from loralab.tasks import Task, get_task

LABELS_FILE = "label_mapping.json"
CONFIG_FILE = "loralab_config.yaml"
PEFT_TASKS = {"SEQ_CLS": "sequence_classification", "TOKEN_CLS": "token_classification",
              "CAUSAL_LM": "causal_lm"}


@dataclass
class LoadedAdapter:
    model: PeftModel
    tokenizer: Any
    task: Task
    labels: list[str] | None
    config: Config


def adapter_folder_name(config: Config, model_type: str) -> str:
    return f"lora_{config.run_name}_{model_type}_r{config.lora.r}"


def save_adapter(model: PeftModel, tokenizer: Any, config: Config, labels: list[str] | None,
                 model_type: str, path: Path) -> Path:
    """Write the adapter folder atomically (a killed run never leaves half an adapter)."""
    with atomic_directory(path) as tmp:
        model.save_pretrained(tmp, save_embedding_layers=False)  # embeddings are frozen
        tokenizer.save_pretrained(tmp)
        write_task_files(tmp, config, labels, model_type)
    return path


def write_task_files(folder: Path, config: Config, labels: list[str] | None,
                     model_type: str) -> None:
    """label_mapping.json and loralab_config.yaml (adapter folders and export folders)."""
    mapping = {
        "task": config.model.task,
        "base_model": config.model.name,
        "model_type": model_type,
        "max_length": config.model.max_length,
        "labels": labels,
        "id2label": {str(i): n for i, n in enumerate(labels)} if labels else None,
        "label2id": {n: i for i, n in enumerate(labels)} if labels else None,
    }
    atomic_write_text(folder / LABELS_FILE, json.dumps(mapping, indent=2) + "\n")
    atomic_write_text(folder / CONFIG_FILE, dump_config(config))


def read_adapter_metadata(path: Path) -> tuple[Config, str, list[str] | None]:
    """(config, task name, labels) of an adapter folder — loralab's own or plain PEFT's."""
    if not (path / "adapter_config.json").is_file():
        raise UserError(f"{path} is not an adapter folder (no adapter_config.json)")
    peft_config = PeftConfig.from_pretrained(str(path))
    raw: dict[str, Any] = {}
    if (path / CONFIG_FILE).is_file():
        raw = parse_yaml((path / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    mapping = {}
    if (path / LABELS_FILE).is_file():
        mapping = json.loads((path / LABELS_FILE).read_text(encoding="utf-8"))
    task = mapping.get("task") or PEFT_TASKS.get(str(peft_config.task_type))
    if task is None:
        raise UserError(f"{path}: cannot tell the task (adapter task_type "
                        f"{peft_config.task_type!r}); give --config with model.task")
    labels = mapping.get("labels") if mapping else plain_peft_labels(path, task)
    if not mapping and labels is None and task == "sequence_classification":
        task = "regression"  # a one-output SEQ_CLS head trained elsewhere
    raw.setdefault("model", {})
    base_model = mapping.get("base_model") or peft_config.base_model_name_or_path
    raw["model"].setdefault("name", base_model)
    raw["model"]["task"] = task
    return validate_config(raw), task, labels


def plain_peft_labels(path: Path, task: str) -> list[str] | None:
    """Generic LABEL_i names sized from the saved head, for adapters trained elsewhere."""
    from safetensors import safe_open

    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    with safe_open(str(weights), "pt") as handle:
        for key in handle.keys():
            if key.endswith("classifier.weight") or key.endswith("classifier.out_proj.weight"):
                rows = handle.get_slice(key).get_shape()[0]
                return None if task == "regression" or rows == 1 else \
                    [f"LABEL_{i}" for i in range(rows)]
    return None


def load_adapter(path: str | Path, config: Config | None = None, *, device: str | None = None,
                 dtype: torch.dtype | None = None) -> LoadedAdapter:
    """Base model + head + adapter, ready for inference (eval mode).

    By default the model goes on the GPU when there is one, in the precision training uses;
    `device` / `dtype` ask for a placement instead (the export reference: "cpu", float32).
    A QLoRA adapter asked for in a floating `dtype` gets its base in full precision: 4-/8-bit
    weights have no fp32 form short of de-quantising them.
    """
    path = Path(path)
    stored, task_name, labels = read_adapter_metadata(path)
    config = config or stored
    task = get_task(task_name, config)
    if task_name == "causal_lm":
        return load_causal_adapter(path, stored, config, task, device=device, dtype=dtype)
    auto_cls = getattr(transformers, task.auto_model_class)
    kwargs = head_kwargs(labels)
    source = resolve_model_source(stored.model.name)
    try:
        base = auto_cls.from_pretrained(source, dtype=dtype or torch.float32,
                                        trust_remote_code=stored.model.trust_remote_code, **kwargs)
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(path) if (path / "tokenizer_config.json").is_file() else source)
    except (OSError, ValueError) as exc:
        raise model_load_error(stored.model.name, exc) from None
    model = PeftModel.from_pretrained(base, str(path))
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
    return LoadedAdapter(model, tokenizer, task, labels, config)


def load_causal_adapter(path: Path, stored: Config, config: Config, task: Task, *,
                        device: str | None = None,
                        dtype: torch.dtype | None = None) -> LoadedAdapter:
    """The base causal LM (from its hub id, folder or GGUF file) with the adapter on top."""
    from loralab.models.causal import for_inference, load_causal_model, load_causal_tokenizer

    if dtype is not None and stored.model.quantization:
        stored = stored.model_copy(update={"model": stored.model.model_copy(
            update={"quantization": None})})
    base = load_causal_model(stored, dtype=dtype)
    if (path / "tokenizer_config.json").is_file():
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
    else:
        tokenizer = load_causal_tokenizer(stored)
    model = for_inference(PeftModel.from_pretrained(base, str(path)), stored, device=device)
    return LoadedAdapter(model, tokenizer, task, None, config)
