"""The source adapter of an export: its reference load and the identity of its weights.

The reference is always base + adapter in PyTorch, fp32, on the CPU: the most exact form of the
model, whatever precision the export is written in or the machine has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from loralab.errors import UserError
from loralab.evaluation.gate.results import RUN_METRICS, sha256_file
from loralab.models.adapter_io import read_adapter_files
from loralab.models.placement import Placement
from loralab.tasks import LoadedAdapter, get_task, load_adapter, read_adapter_metadata

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def weights_file(adapter: Path) -> Path:
    for name in WEIGHT_FILES:
        if (adapter / name).is_file():
            return adapter / name
    raise UserError(f"{adapter}: no adapter weights ({' or '.join(WEIGHT_FILES)})")


def source_identity(adapter: Path) -> dict[str, str]:
    """{"path", "weights_file", "sha256"} of the adapter folder."""
    weights = weights_file(adapter)
    return {"path": str(adapter.resolve()), "weights_file": weights.name,
            "sha256": sha256_file(weights)}


def load_reference(adapter: Path) -> LoadedAdapter:
    """Base + adapter on the CPU in fp32. A QLoRA adapter's base loads in full precision (its
    4-/8-bit form needs CUDA and has no fp32 weights to merge into); `config` keeps the stored
    quantization, so the export can say so."""
    stored, task_name, labels = read_adapter_metadata(adapter)
    if not stored.model.quantization:
        return load_adapter(adapter, device="cpu", dtype=torch.float32)
    full = stored.model_copy(update={"model": stored.model.model_copy(
        update={"quantization": None})})
    task = get_task(task_name, stored)
    model, tokenizer = task.load_model(full, labels, adapter, Placement.cpu_fp32())
    inputs = read_adapter_files(adapter).mapping.get("inputs")
    return LoadedAdapter(model, tokenizer, task, labels, stored, adapter, inputs)


def run_metrics(adapter: Path) -> dict[str, Any] | None:
    """The run folder's metrics.json when the adapter sits in one (its parent folder)."""
    path = adapter.resolve().parent / RUN_METRICS
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or metrics.get("adapter") != adapter.resolve().name:
        return None  # a metrics.json of another run, or no adapter of this run
    return metrics
