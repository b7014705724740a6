"""The contents of a run's metrics.json, from the finished training state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from loralab.config import Config
from loralab.models.build import BuiltModel
from loralab.training.run_folder import adapted_layer_count, library_versions, peak_memory_mb
from loralab.training.selection import active_adapter, of_inactive_adapter, saved_parameters
from loralab.training.train_state import TrainState


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable = saved with the adapter, total without PEFT's head copies); in a model with
    several adapters, the active one's (the others are not part of this run)."""
    active = active_adapter(model)
    trainable = sum(p.numel() for _, p in saved_parameters(model))
    total = sum(p.numel() for n, p in model.named_parameters()
                if "modules_to_save" not in n and not of_inactive_adapter(n, active))
    return trainable, total


def run_metrics(config: Config, state: TrainState, built: BuiltModel, *, epochs: int,
                final: dict[str, Any], test: dict[str, Any] | None, adapter: Path | None,
                trivial: dict[str, Any], sizes: dict[str, int],
                distributed: dict[str, Any] | None) -> dict[str, Any]:
    tracker, counters = state.tracker, state.counters
    trainable, total = parameter_counts(state.model)
    return {
        "name": config.run_name,
        "task": config.model.task,
        "model": config.model.name,
        "adapter": adapter.name if adapter else None,
        "baseline": not config.lora.enabled,
        "metric_for_best": tracker.metric,
        "best_step": tracker.best_step,
        "best_epoch": tracker.best_epoch,
        "saved": config.training.save_strategy,
        "final": final,
        "best": tracker.best,
        "test": test,
        "trivial_baseline": trivial,
        "epochs": epochs,
        "steps": state.step,
        "train_seconds": round(counters.train_seconds, 3),
        "epoch_seconds": counters.epoch_seconds,
        "train_samples_per_second": round(counters.samples_seen
                                          / max(counters.train_seconds, 1e-9), 3),
        "train_samples": sizes["train"],
        "eval_samples": sizes["validation"],
        "trainable_parameters": trainable,
        "total_parameters": total,
        "peak_memory_mb": peak_memory_mb(),
        "gradient_checkpointing": built.memory,
        "target_modules": len(built.target_modules),
        "adapted_layers": adapted_layer_count(built.target_modules),
        "resumed_from_step": state.resumed_from_step,
        "restarts": state.restarts,   # training.on_collapse=restart (loralab.training.collapse)
        "modules_to_save": built.modules_to_save,
        "notes": built.notes,
        "distributed": distributed,
        "versions": library_versions(),
    }


def distributed_counts(accelerator: Any, counters: Any) -> dict[str, Any] | None:
    """With several processes: the training rows each one saw (all ranks take part)."""
    if accelerator.num_processes == 1:
        return None
    from accelerate.utils import gather_object

    seen = gather_object([counters.samples_seen])
    counters.samples_seen = sum(seen)
    return {"processes": accelerator.num_processes, "train_rows_per_process": seen}
