"""Best-checkpoint tracking by a chosen metric, with early stopping.

The best trainable weights (LoRA, head, unfrozen layers: a few MB) are kept in memory and put
back at the end, so the saved adapter is the best one without writing a checkpoint per epoch.
"""

from __future__ import annotations

from typing import Any

import torch

from loralab.config import TrainingConfig
from loralab.errors import ConfigError

LOWER_IS_BETTER = ("loss", "mse")


class BestTracker:
    def __init__(self, model: torch.nn.Module, cfg: TrainingConfig, default_metric: str):
        self.model = model
        self.metric = (cfg.metric_for_best or default_metric).removeprefix("eval_")
        self.greater = cfg.greater_is_better if cfg.greater_is_better is not None \
            else not self.metric.endswith(LOWER_IS_BETTER)
        self.patience = cfg.early_stopping_patience
        self.best: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None
        self.best_step = self.best_epoch = None
        self._bad_evals = 0
        self._state: dict[str, torch.Tensor] | None = None

    def update(self, metrics: dict[str, Any], step: int, epoch: float) -> bool:
        if self.metric not in metrics:
            known = ", ".join(k for k, v in metrics.items() if isinstance(v, float))
            raise ConfigError(f"training.metric_for_best: {self.metric!r} is not a metric of "
                              f"this task; choose one of: {known}")
        self.last = metrics
        value = metrics[self.metric]
        if self.best is None or (value > self.best[self.metric] if self.greater
                                 else value < self.best[self.metric]):
            self.best, self.best_step, self.best_epoch = metrics, step, epoch
            self._bad_evals = 0
            self._state = {n: p.detach().to("cpu", copy=True)
                           for n, p in self.model.named_parameters() if saved_parameter(n, p)}
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
