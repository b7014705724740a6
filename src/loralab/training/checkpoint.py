"""Resumable training: RUN/checkpoint/state.pt holds a TrainState's state_dict().

That is the trained weights only (LoRA, head, unfrozen layers), optimizer, scheduler, loss
scaler, RNG states, the epoch's shuffling state, the best-weights tracker and the counters
(see loralab.training.train_state). The frozen base model is not saved (it is reloaded from its
source), so a checkpoint is a few MB. It is written atomically after each epoch (or every
`training.checkpoint_steps` optimizer steps) and removed when the run finishes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from loralab.atomic import atomic_path

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / CHECKPOINT_DIR / STATE_FILE


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()  # serialised in memory: a full disk is then a plain OSError
    torch.save(state, buffer)
    with atomic_path(checkpoint_path(run_dir)) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def remove_checkpoint(run_dir: Path) -> None:
    path = checkpoint_path(run_dir)
    path.unlink(missing_ok=True)
    if path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()
