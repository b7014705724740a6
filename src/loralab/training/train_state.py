"""Everything that changes while training, as one object whose state_dict() is the checkpoint.

    position   step (optimizer steps), epoch (the one to run or running), micro (its
               micro-batches done), and the shuffling state the epoch started from
    counters   training seconds, samples seen, seconds per epoch, the last evaluation's step
    objects    the trainable weights, optimizer, scheduler, loss scaler, best-weights tracker,
               the sampler's generator and the RNGs
    collapse   the restarts done (training.on_collapse), epoch 1's losses while it runs, and
               the initial weights, RNGs and sampler state a restart goes back to
               (loralab.training.collapse)

A checkpoint taken at the end of an epoch continues with the next epoch from the generator's
current state; one taken inside an epoch continues that epoch from its starting state and
skips the micro-batches already done, so a resumed run sees the same batches in the same order
and ends bit-exact with an uninterrupted one (tests/test_resume.py).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from loralab.errors import UserError
from loralab.training.selection import BestTracker, saved_parameters


@dataclass
class Counters:
    train_seconds: float = 0.0
    samples_seen: int = 0
    epoch_seconds: list[float] = field(default_factory=list)
    epoch_elapsed: float = 0.0      # seconds of the running epoch before a mid-epoch resume
    last_eval_step: int | None = None


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


class TrainState:
    def __init__(self, model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
                 tracker: BestTracker, generator: torch.Generator) -> None:
        """`model` is the unwrapped model (parameter names without a DDP prefix)."""
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.scaler, self.tracker, self.generator = scaler, tracker, generator
        self.step = 0
        self.epoch = 0
        self.micro = 0
        self.epoch_start: torch.Tensor = generator.get_state()
        self.counters = Counters()
        self.resumed_from_step: int | None = None
        self.restarts: list[dict[str, Any]] = []
        self.first_epoch_losses: list[float] = []
        self.initial: dict[str, Any] | None = None

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.micro = epoch, 0
        self.epoch_start = self.generator.get_state()

    def at(self, epoch: int, micro: int) -> TrainState:
        """Set the position a checkpoint taken now continues from; returns self."""
        self.epoch, self.micro = epoch, micro
        return self

    def state_dict(self) -> dict[str, Any]:
        counters = asdict(self.counters)
        if not self.micro:
            counters["epoch_elapsed"] = 0.0
        return {
            "step": self.step, "epoch": self.epoch, "micro": self.micro,
            "weights": {n: p.detach().cpu() for n, p in saved_parameters(self.model)},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_states(),
            "epoch_generator": self.epoch_start if self.micro else self.generator.get_state(),
            "tracker": self.tracker.state_dict(),
            "counters": counters,
            "restarts": self.restarts,
            "first_epoch_losses": self.first_epoch_losses if self.epoch == 0 else [],
            "initial": self.initial if self.epoch == 0 and self.micro else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in state["weights"].items():
                params[name].copy_(value)
        rates = list(self.scheduler.base_lrs)   # this config's (a diverged run may lower them)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as exc:  # other parameter groups: learning rates merged or split
            raise UserError(f"the checkpoint's optimizer does not fit this config ({exc}); "
                            "resume with the learning rates the run started with") from None
        self.scheduler.load_state_dict(state["scheduler"])
        use_rates(self.optimizer, self.scheduler, rates)
        if state["scaler"] is not None and self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.tracker.load_state_dict(state["tracker"])
        self.counters = Counters(**state["counters"])
        self.step, self.epoch, self.micro = state["step"], state["epoch"], state["micro"]
        self.resumed_from_step = self.step
        self.generator.set_state(state["epoch_generator"])
        set_rng_states(state["rng"])
        self.restarts = state.get("restarts", [])   # absent in checkpoints of earlier versions
        self.first_epoch_losses = state.get("first_epoch_losses", [])
        self.initial = state.get("initial")


def use_rates(optimizer: Any, scheduler: Any, rates: list[float]) -> None:
    """Continue a restored schedule at new base learning rates (the same position in it)."""
    for group, old, new in zip(optimizer.param_groups, scheduler.base_lrs, rates):
        group["lr"] = group["lr"] * new / old
        group["initial_lr"] = new
    scheduler.base_lrs = rates
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
