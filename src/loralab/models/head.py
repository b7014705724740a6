"""A causal LM's output layer, run only where it is asked to: the hidden states it would read
are captured, and the layer itself sees no position in the model's forward pass.

    with head_inputs(model) as captured:
        model(**batch)                      # logits of shape [batch, 0, vocab]: none computed
    hidden = captured.hidden                # [batch, seq, hidden]: what lm_head would have read
    head = OutputHead.of(model)
    logits = head(hidden[positions])        # fp32 logits of the chosen positions only

A forward pre-hook on `get_output_embeddings()` sees the final hidden states after the model's
last norm whatever the architecture (Llama, Qwen2, GPT-2, ...), and the forward still goes
through the model's own `__call__` (a DDP wrapper's included). `OutputHead` applies the logit
transforms some configs add after the layer (Gemma's final soft-capping, Cohere's logit scale,
Granite's logits scaling), so its logits are the model's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

Transform = Callable[[torch.Tensor], torch.Tensor]


class Captured:
    hidden: torch.Tensor | None = None


def output_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The model's output (vocabulary) layer; a DDP wrapper is looked through."""
    inner = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) \
        else model
    layer = inner.get_output_embeddings()
    if layer is None:
        raise ValueError(f"{type(inner).__name__} has no output embeddings (lm_head)")
    return layer


@contextmanager
def head_inputs(model: torch.nn.Module) -> Iterator[Captured]:
    """While open, the output layer computes nothing and the hidden states it was given are
    kept in `.hidden`."""
    captured = Captured()

    def skip(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        captured.hidden = args[0]
        return (args[0][..., :0, :], *args[1:])

    handle = output_layer(model).register_forward_pre_hook(skip)
    try:
        yield captured
    finally:
        handle.remove()


def logit_transform(config: Any) -> Transform | None:
    """What the model's forward does to the output layer's logits (None: nothing)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    cap = getattr(text, "final_logit_softcapping", None)
    if cap:
        return lambda logits: torch.tanh(logits / cap) * cap
    scale = getattr(text, "logit_scale", None)
    if isinstance(scale, (int, float)) and scale != 1:
        return lambda logits: logits * scale
    divisor = getattr(text, "logits_scaling", None)
    if isinstance(divisor, (int, float)) and divisor != 1:
        return lambda logits: logits / divisor
    return None


@dataclass
class OutputHead:
    """hidden states [N, hidden] -> the model's fp32 logits [N, vocab]."""

    layer: torch.nn.Module
    transform: Transform | None = None

    @classmethod
    def of(cls, model: torch.nn.Module, *, base: bool = False) -> OutputHead:
        """The model's head; `base`: without a LoRA adapter on it (a KD teacher that is the
        base model itself)."""
        layer = output_layer(model)
        if base and hasattr(layer, "get_base_layer"):
            layer = layer.get_base_layer()
        inner = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) \
            else model
        return cls(layer, logit_transform(inner.config))

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        weight = getattr(self.layer, "weight", None)
        if (isinstance(weight, torch.Tensor) and weight.is_floating_point()
                and weight.dtype != hidden.dtype
                and not torch.is_autocast_enabled(hidden.device.type)):
            hidden = hidden.to(weight.dtype)  # e.g. fp32 head over bf16 states, no autocast
        logits = self.layer(hidden).float()
        return self.transform(logits) if self.transform else logits

    def trainable(self) -> list[torch.nn.Parameter]:
        """Parameters of the layer that train (a LoRA adapter on lm_head); usually none."""
        return [p for p in self.layer.parameters() if p.requires_grad]

    @property
    def vocab_size(self) -> int:
        weight = getattr(self.layer, "weight", None)
        out = getattr(self.layer, "out_features", None)
        return int(out if out is not None else weight.shape[0])
