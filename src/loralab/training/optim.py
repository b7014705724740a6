"""Optimizer parameter groups and the warm-up scheduler (precision: loralab.models.placement)."""

from __future__ import annotations

import torch
from transformers import get_scheduler

from loralab.config import TrainingConfig

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def build_optimizer(model: torch.nn.Module, cfg: TrainingConfig,
                    unfrozen_layers: list[str]) -> torch.optim.Optimizer:
    """AdamW with LoRA, head and unfrozen-layer groups; no decay on biases and norms.

    Unfrozen top layers are frozen until `unfreeze_after_epoch` but are in the optimizer from
    the start (parameters without a gradient are skipped by AdamW).
    """
    head_lr = cfg.head_learning_rate or cfg.learning_rate
    unfreeze_lr = cfg.unfreeze_learning_rate or cfg.learning_rate * 0.1
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        in_unfrozen = any(f"{layer}.modules_to_save." in name for layer in unfrozen_layers)
        if not (param.requires_grad or in_unfrozen):
            continue
        if in_unfrozen:
            lr = unfreeze_lr
        elif "lora_" not in name:  # the head (modules_to_save, or the baseline's own head)
            lr = head_lr
        else:
            lr = cfg.learning_rate
        decay = 0.0 if name.endswith(NO_DECAY) else cfg.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return torch.optim.AdamW(
        [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()])


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainingConfig, total_steps: int):
    """`warmup` < 1 is a fraction of the total steps, >= 1 a number of steps."""
    warmup = int(cfg.warmup * total_steps) if cfg.warmup < 1 else int(cfg.warmup)
    return get_scheduler(cfg.scheduler, optimizer, num_warmup_steps=min(warmup, total_steps),
                         num_training_steps=total_steps)
