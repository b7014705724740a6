"""LoRA training variants: objects the recipe calls at fixed points, never asking which one
it holds (the shape of PEFT's `LoraVariant`):

    variant = lora_variant(config.lora)      # lora.method picks it: standard | weighted
    variant.fp16_ok                          # may the run use fp16 autocast?
    variant.notes()                          # notes for the run (keys it ignores)
    variant.attach(model)                    # after the model is built: hooks, if any
    variant.begin_step(batch)                # before each training forward pass
    variant.extra_loss(task, scores, gold)   # a term added to the task's loss (0 if none);
                                             # scores: the task's training_forward scores
    variant.detach()                         # before the adapter is saved: hooks removed

The adapter of every variant saves and reloads as plain LoRA. A new variant (a DoRA-style
reparametrisation, an rsLoRA schedule, ...) is a class with these methods in VARIANTS.

The "weighted" LoRA variant of job 1, as hooks on PEFT's own LoRA layers.

For every adapted layer, let b = B·A·dropout(x)·s be the LoRA branch output (s = alpha / r) for
one token. The variant changes training only:

* gradient scaling: in the backward pass the gradient entering b is multiplied per token by
  ``scale_factor / (‖b‖ + eps)`` (‖b‖ detached), so tokens (and hence examples) on which the
  adapter's contribution is still small learn faster;
* output dropout: dropout on b itself (PEFT's ``lora_dropout`` acts on x, the branch input);
* label-wise regulariser: ``lambda_reg × mean over correctly predicted examples of
  Σ_layers mean_tokens ‖b‖²`` — computed from the forward activations of the same step, so no
  per-sample gradient is ever stored. Tokens are averaged (padding excluded) so long examples
  are not damped more than short ones. Its gradient does NOT pass through the factor above:
  the factor rescales only the task loss's gradient, so the regulariser stays the L2 penalty
  it is written as (through the factor, λ‖b‖² would act like a ‖b‖ penalty).

Nothing is copied from PEFT: a forward hook on each ``lora_B`` module sees the branch output
(before scaling) and reads the layer's scaling (alpha / r, or alpha / sqrt(r) with rsLoRA) when
it runs; the adapter saves and reloads as plain LoRA.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from peft.tuners.lora import LoraLayer

from loralab.config import WEIGHTED_ONLY, LoraConfig
from loralab.errors import UserError


class StandardLoRA:
    """Plain LoRA: PEFT's layers as they are."""

    fp16_ok = True

    def __init__(self, cfg: LoraConfig) -> None:
        self.cfg = cfg

    def notes(self) -> list[str]:
        """Weighted-only keys set under method standard are accepted (one grid can vary
        lora.method over a base config) and have no effect: say so."""
        fields = type(self.cfg).model_fields
        return [f"lora.{key}={getattr(self.cfg, key)} only acts with lora.method=weighted; "
                "ignored" for key in WEIGHTED_ONLY
                if getattr(self.cfg, key) != fields[key].default]

    def attach(self, model: torch.nn.Module) -> None:
        pass

    def begin_step(self, batch: dict[str, torch.Tensor]) -> None:
        pass

    def extra_loss(self, task: Any, logits: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), device=logits.device)

    def detach(self) -> None:
        pass


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by a per-token factor."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(factor)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (factor,) = ctx.saved_tensors
        return (grad.float() * factor.float()).to(grad.dtype), None


class WeightedLoRA:
    """Job 1's variant: per-token gradient scaling, output dropout and the label-wise
    regulariser, as forward hooks on every `lora_B` module. fp16 is refused: the gradient
    factor is scale_factor / eps while B is still zero, which overflows fp16."""

    fp16_ok = False

    def __init__(self, cfg: LoraConfig) -> None:
        self.cfg = cfg
        self.scale_factor = cfg.scale_factor
        self.output_dropout = cfg.output_dropout
        self.lambda_reg = cfg.lambda_reg
        self.eps = cfg.eps
        self.attention_mask: torch.Tensor | None = None
        self.branch_energy: list[torch.Tensor] = []
        self._handles: list[Any] = []

    def notes(self) -> list[str]:
        return []

    def attach(self, model: torch.nn.Module) -> None:
        for module in model.modules():
            if isinstance(module, LoraLayer):
                for adapter, lora_b in module.lora_B.items():
                    hook = partial(self._on_branch_output, layer=module, adapter=adapter)
                    self._handles.append(lora_b.register_forward_hook(hook))
        if not self._handles:
            raise UserError("lora.method=weighted found no LoRA layer to hook")

    def begin_step(self, batch: dict[str, torch.Tensor]) -> None:
        """Call before each training forward pass."""
        self.attention_mask = batch.get("attention_mask")
        self.branch_energy = []

    def _on_branch_output(self, module: torch.nn.Module, inputs, output: torch.Tensor, *,
                          layer: LoraLayer, adapter: str) -> torch.Tensor:
        if not module.training:
            return output
        if self.output_dropout > 0:
            output = F.dropout(output, p=self.output_dropout, training=True)
        branch = output * layer.scaling[adapter]  # read now: PEFT may change the scaling
        if self.lambda_reg > 0:
            self.branch_energy.append(self._per_example_energy(branch))
        if not output.requires_grad:
            return output
        factor = self.scale_factor / (branch.detach().norm(dim=-1, keepdim=True) + self.eps)
        return _ScaleGrad.apply(output, factor)

    def _per_example_energy(self, branch: torch.Tensor) -> torch.Tensor:
        """Mean over non-padding tokens of ‖b‖², one value per example."""
        energy = branch.float().pow(2).sum(-1)
        mask = self.attention_mask
        if energy.dim() != 2 or (mask is not None and mask.shape != energy.shape):
            raise UserError("lora.lambda_reg needs [batch, tokens, hidden] LoRA outputs; this "
                            "model's layers give another shape (unpadded attention?)")
        if mask is None:
            return energy.mean(-1)
        mask = mask.to(energy.dtype)
        return (energy * mask).sum(-1) / mask.sum(-1).clamp(min=1)

    def extra_loss(self, task: Any, logits: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """The label-wise regulariser over the examples the task already gets right."""
        correct = task.correct(logits.detach(), gold, self.cfg.reg_tolerance)
        return self.regulariser(correct).to(logits.device)

    def regulariser(self, correct: torch.Tensor) -> torch.Tensor:
        """λ × mean over correctly predicted examples of the summed branch energy (0 if none)."""
        if self.lambda_reg == 0 or not self.branch_energy:
            return torch.zeros(())
        per_example = torch.stack(self.branch_energy).sum(0)
        correct = correct.to(per_example.device)
        if not bool(correct.any()):
            return per_example.sum() * 0.0
        return self.lambda_reg * per_example[correct].mean()

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


LoraVariant = StandardLoRA | WeightedLoRA
VARIANTS: dict[str, type[LoraVariant]] = {"standard": StandardLoRA, "weighted": WeightedLoRA}


def lora_variant(cfg: LoraConfig) -> LoraVariant:
    """The variant `lora.method` names."""
    return VARIANTS[cfg.method](cfg)
