"""Best-checkpoint tracking by a chosen metric, with early stopping.

The best trainable weights (LoRA, head, unfrozen layers: a few MB) are kept in memory and put
back at the end, so the saved adapter is the best one without writing a checkpoint per epoch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import torch

from loralab.config import TrainingConfig
from loralab.metrics.metric_registry import greater_is_better, resolve_metric


class BestTracker:
    """`metric_for_best` (or the task default) may be an alias (`f1`): it resolves to the name
    the evaluations carry (`f1_binary`, `entity_f1`, ...); its direction is the registry's."""

    def __init__(self, model: torch.nn.Module, cfg: TrainingConfig, default_metric: str,
                 available: list[str] | None = None):
        self.model = model
        self.requested = cfg.metric_for_best or default_metric
        self.metric = self.requested.removeprefix("eval_")
        if available is not None:
            self.metric = resolve_metric(self.requested, available,
                                         key="training.metric_for_best")
        self.patience = cfg.early_stopping_patience
        self.best: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None
        self.best_step = self.best_epoch = None
        self._bad_evals = 0
        self._state: dict[str, torch.Tensor] | None = None

    @property
    def greater(self) -> bool:
        return greater_is_better(self.metric)

    def update(self, metrics: dict[str, Any], step: int, epoch: float) -> bool:
        if self.metric not in metrics:
            scores = [k for k, v in metrics.items() if isinstance(v, float)]
            self.metric = resolve_metric(self.requested, scores, key="training.metric_for_best")
        self.last = metrics
        value = metrics[self.metric]
        if self.best is None or (value > self.best[self.metric] if self.greater
                                 else value < self.best[self.metric]):
            self.best, self.best_step, self.best_epoch = metrics, step, epoch
            self._bad_evals = 0
            self._state = {n: p.detach().to("cpu", copy=True)
                           for n, p in saved_parameters(self.model)}
            return False
        self._bad_evals += 1
        return self.patience is not None and self._bad_evals >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "last": self.last, "best_step": self.best_step,
                "best_epoch": self.best_epoch, "bad_evals": self._bad_evals,
                "weights": self._state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.last = state["best"], state["last"]
        self.best_step, self.best_epoch = state["best_step"], state["best_epoch"]
        self._bad_evals, self._state = state["bad_evals"], state["weights"]

    def restore_best(self) -> None:
        if self._state is None:
            return
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in self._state.items():
                params[name].copy_(value)


def trainable_name(name: str) -> bool:
    return "lora_" in name or "modules_to_save" in name


def saved_parameter(name: str, param: torch.nn.Parameter) -> bool:
    """Trained now or later: LoRA, the head (PEFT's modules_to_save, or the baseline's own
    head, which is the only part that requires grad), unfrozen top layers."""
    return param.requires_grad or trainable_name(name)


# `...q_proj.lora_A.<adapter>.weight`, `...classifier.modules_to_save.<adapter>.weight`
ADAPTER_PART = re.compile(r"\.(?:lora_[A-Za-z_]+|modules_to_save)\.([^.]+)")


def adapter_of(name: str) -> str | None:
    """The PEFT adapter a parameter belongs to (None for the base model's own)."""
    found = ADAPTER_PART.search(name)
    return found.group(1) if found else None


def active_adapter(model: torch.nn.Module) -> str | None:
    """The active adapter of a PEFT model holding several (None for one adapter or none)."""
    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, dict) or len(configs) < 2:
        return None
    return model.active_adapter


def of_inactive_adapter(name: str, active: str | None) -> bool:
    adapter = adapter_of(name)
    return active is not None and adapter is not None and adapter != active


def saved_parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Parameter]]:
    """The parameters a run trains and saves; in a model with several adapters only the
    active adapter's (the others are trained, or were, by their own runs)."""
    active = active_adapter(model)
    for name, param in model.named_parameters():
        if saved_parameter(name, param) and not of_inactive_adapter(name, active):
            yield name, param
