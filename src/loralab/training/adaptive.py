"""Defaults that adapt to the data (opt-in): `training.min_steps`, a floor on the optimizer
steps of a run. A small dataset gets more epochs, whole epochs, until the floor is reached;
the run says so in its notes (metrics.json) and its summary line. `training.max_steps`, when
set, is the exact count and wins."""

from __future__ import annotations

import math

from loralab.config import TrainingConfig

NOTE_PREFIX = "training.min_steps="


def planned_steps(cfg: TrainingConfig, steps_per_epoch: int) -> tuple[int, str | None]:
    """(optimizer steps to run, the note when min_steps raised them)."""
    total = cfg.max_steps or math.ceil(steps_per_epoch * cfg.epochs)
    if cfg.max_steps or not cfg.min_steps or total >= cfg.min_steps:
        return total, None
    epochs = math.ceil(cfg.min_steps / steps_per_epoch)
    steps = epochs * steps_per_epoch
    return steps, (f"{NOTE_PREFIX}{cfg.min_steps}: {epochs} epochs instead of {cfg.epochs:g} "
                   f"({steps} optimizer steps, {steps_per_epoch} per epoch)")


def min_steps_note(notes: list[str]) -> str | None:
    return next((n for n in notes if n.startswith(NOTE_PREFIX)), None)
