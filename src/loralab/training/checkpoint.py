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
from tqdm.auto import tqdm

from loralab.atomic import atomic_path
from loralab.errors import UserError
from loralab.models.build import set_unfrozen_trainable

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"
CHECKPOINT_KEYS = {"step", "epoch", "micro", "weights", "optimizer", "scheduler", "rng"}


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / CHECKPOINT_DIR / STATE_FILE


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()  # serialised in memory: a full disk is then a plain OSError
    torch.save(state, buffer)
    with atomic_path(checkpoint_path(run_dir)) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The checkpoint's state, None without one; a truncated or corrupt file (or one that
    cannot be read) is a UserError naming it."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises OSError, RuntimeError, EOFError,
        # UnpicklingError ... for a cut file
        raise UserError(f"{path}: not a readable checkpoint ({first_line(exc)}); it is "
                        f"truncated or corrupt: delete {path.parent} to train from the start"
                        ) from None
    if not isinstance(state, dict) or not CHECKPOINT_KEYS <= set(state):
        raise UserError(f"{path}: not a loralab checkpoint (expected the keys "
                        f"{', '.join(sorted(CHECKPOINT_KEYS))}); delete {path.parent} to train "
                        "from the start")
    return state


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def remove_checkpoint(run_dir: Path) -> None:
    path = checkpoint_path(run_dir)
    path.unlink(missing_ok=True)
    if path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()


class Resuming:
    """Checkpointing and resuming, as methods of TrainingRecipe (state, cfg, built, run, ...);
    a checkpoint taken after a collapse restart resumes at the lowered learning rates."""

    state: Any
    cfg: Any
    resume_state: dict[str, Any] | None

    def _resume(self) -> tuple[int, int]:
        """(epoch, micro-batches of it already done): (0, 0) for a fresh run."""
        if self.resume_state is None:
            return 0, 0
        state = self.state
        for _ in self.resume_state.get("restarts", []):  # it restarted: at the lowered rates
            self.lower_rates()
        state.load_state_dict(self.resume_state)
        if self.built.unfrozen_layers and state.epoch > self.cfg.unfreeze_after_epoch:
            set_unfrozen_trainable(self.raw_model, self.built.unfrozen_layers, True)
        where = f"epoch {state.epoch}" + (f", batch {state.micro}" if state.micro else "")
        if self.main:
            tqdm.write(f"resuming from the checkpoint at step {state.step} ({where})")
        return state.epoch, state.micro

    def _checkpoint(self, epoch: int, micro: int) -> None:
        if self.main:
            save_checkpoint(self.run.path, self.state.at(epoch, micro).state_dict())
