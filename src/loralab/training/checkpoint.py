"""Resumable training: a small checkpoint of everything that changes while training.

    RUN/checkpoint/state.pt   trained weights only (LoRA, head, unfrozen layers), optimizer,
                              scheduler, loss scaler, RNG states, the epoch's shuffling state,
                              the best-weights tracker and the timing counters

The frozen base model is not saved (it is reloaded from its source), so a checkpoint is a few
MB. It is written atomically after each epoch (or every `training.checkpoint_steps` optimizer
steps) and removed when the run finishes; a run started again on the same folder with
`resume=True` continues from it and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from loralab.training.selection import saved_parameter

if TYPE_CHECKING:
    from loralab.training.recipe import TrainingRecipe

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / CHECKPOINT_DIR / STATE_FILE


def rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(recipe: TrainingRecipe, *, epoch: int, micro: int,
                    generator: torch.Tensor) -> None:
    """`epoch`: the epoch to continue; `micro`: its micro-batches already done; `generator`:
    the shuffling state at the start of that epoch."""
    model = recipe.accelerator.unwrap_model(recipe.model)
    tracker = recipe.tracker
    scaler = recipe.accelerator.scaler
    state = {
        "step": recipe.step, "epoch": epoch, "micro": micro,
        "weights": {n: p.detach().cpu() for n, p in model.named_parameters()
                    if saved_parameter(n, p)},
        "optimizer": recipe.optimizer.state_dict(),
        "scheduler": recipe.scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_states(),
        "epoch_generator": generator,
        "tracker": tracker.state_dict(),
        "counters": {"train_seconds": recipe.train_seconds, "samples_seen": recipe.samples_seen,
                     "epoch_seconds": list(recipe.epoch_seconds),
                     "epoch_elapsed": recipe.epoch_elapsed if micro else 0.0,
                     "last_eval_step": recipe.last_eval_step},
    }
    path = checkpoint_path(recipe.run.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def restore_checkpoint(recipe: TrainingRecipe, state: dict[str, Any]) -> None:
    """Put weights, optimizer, scheduler, scaler, tracker and counters back (RNG: see fit)."""
    model = recipe.accelerator.unwrap_model(recipe.model)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["weights"].items():
            params[name].copy_(value)
    recipe.optimizer.load_state_dict(state["optimizer"])
    recipe.scheduler.load_state_dict(state["scheduler"])
    if state["scaler"] is not None and recipe.accelerator.scaler is not None:
        recipe.accelerator.scaler.load_state_dict(state["scaler"])
    recipe.tracker.load_state_dict(state["tracker"])
    counters = state["counters"]
    recipe.step = state["step"]
    recipe.train_seconds = counters["train_seconds"]
    recipe.samples_seen = counters["samples_seen"]
    recipe.epoch_seconds = list(counters["epoch_seconds"])
    recipe.last_eval_step = counters["last_eval_step"]


def remove_checkpoint(run_dir: Path) -> None:
    path = checkpoint_path(run_dir)
    path.unlink(missing_ok=True)
    if path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()
