"""A run stops at its first non-finite loss or gradient norm (exit code 3), instead of training
on NaN, saving a NaN adapter and printing `done:`.

    check_loss(config, step, loss, reg, parts)     after each micro-batch's forward/backward
    check_grad_norm(config, step, norm, scaler)    after the optimizer step (the checkpoint is
                                                   never written after a non-finite one)
    diverged_metrics(config, exc, ...)             metrics.json of the stopped run

The run stops before any checkpoint is written after a non-finite step, so the last checkpoint
holds the weights of finite steps only and `--resume` continues from it (with a lower learning
rate if wanted, see loralab.training.run_folder).
Under fp16 the loss scaler skips steps whose gradients overflowed (that is its job), so a
non-finite gradient norm is not a divergence there; a non-finite loss still is.
"""

from __future__ import annotations

import math
from typing import Any

from loralab.config import Config
from loralab.errors import TrainingDiverged

DIVERGED = "diverged"   # metrics.json "status" of a run stopped by a non-finite loss


def check_loss(config: Config, step: int, loss: float, reg: float,
               parts: dict[str, float]) -> None:
    """TrainingDiverged when the loss of micro-batch at optimizer step `step` (1-based, the
    step it counts towards) or one of its terms is inf / nan."""
    for term, value in (*parts.items(), ("loss", loss), ("lora regulariser", reg)):
        if not math.isfinite(value):
            raise diverged(config, step, term, value)


def check_grad_norm(config: Config, step: int, grad_norm: float | None, scaler: Any) -> None:
    """TrainingDiverged for a non-finite gradient norm, unless a loss `scaler` (fp16) is
    there to skip the step."""
    if grad_norm is not None and scaler is None and not math.isfinite(grad_norm):
        raise diverged(config, step, "gradient norm", grad_norm)


def diverged(config: Config, step: int, term: str, value: float) -> TrainingDiverged:
    what = term if term in ("loss", "gradient norm", "lora regulariser") \
        else f"loss term {term!r}"
    return TrainingDiverged(
        f"training diverged at step {step}: the {what} is {value}; likely cause: "
        f"{likely_cause(config)}; try {what_to_try(config)}; the run folder keeps its last "
        "checkpoint: --resume continues from it (a lower training.learning_rate is accepted "
        "there), or train again with --overwrite",
        step=step, term=term, value=value)


def likely_cause(config: Config) -> str:
    """The settings that most often make a LoRA run blow up, as this config has them."""
    train, lora = config.training, config.lora
    causes = [f"training.learning_rate={train.learning_rate:g} too high"]
    if lora.enabled and lora.alpha / lora.r > 4:
        causes.append(f"lora.alpha={lora.alpha:g} large for lora.r={lora.r} (scale "
                      f"{lora.alpha / lora.r:g})")
    if train.precision == "fp16":
        causes.append("fp16 overflow")
    if train.max_grad_norm is None:
        causes.append("no gradient clipping (training.max_grad_norm=null)")
    if lora.method == "weighted":
        causes.append(f"the weighted factor lora.scale_factor / lora.eps = "
                      f"{lora.scale_factor / lora.eps:g}")
    causes.append("an extreme value in the training data (a label, a very long row)")
    return ", or ".join(causes)


def what_to_try(config: Config) -> str:
    train, lora = config.training, config.lora
    tries = [f"training.learning_rate={train.learning_rate / 10:g}"]
    if lora.enabled and lora.alpha / lora.r > 4:
        tries.append(f"lora.alpha={2 * lora.r}")
    if train.max_grad_norm is None:
        tries.append("training.max_grad_norm=1.0")
    if train.precision == "fp16":
        tries.append("training.precision=bf16 or fp32")
    if train.warmup < 0.1:
        tries.append("training.warmup=0.1")
    return ", ".join(tries)


def diverged_metrics(config: Config, exc: TrainingDiverged, *, epoch: int,
                     checkpoint: str | None) -> dict[str, Any]:
    """metrics.json of a run that diverged: no adapter, where it stopped and why, and the
    checkpoint `--resume` continues from (None when none was written yet)."""
    return {"status": DIVERGED, "name": config.run_name, "task": config.model.task,
            "model": config.model.name, "adapter": None, "step": exc.step, "epoch": epoch,
            "term": exc.term, "value": str(exc.value), "message": str(exc),
            "checkpoint": checkpoint}


def is_diverged(metrics: dict[str, Any] | None) -> bool:
    return isinstance(metrics, dict) and metrics.get("status") == DIVERGED
