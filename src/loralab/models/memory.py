"""Activation memory of a causal LM's training step, and gradient checkpointing chosen from it.

    training.gradient_checkpointing: auto | true | false        (default auto)

`activation_bytes` measures what one training forward pass saves for backward: it runs the
model (adapter included, in train mode) on two short probe sequences under
`saved_tensors_hooks`, counts the bytes of every saved tensor that is not a parameter (the
output layer sees no position: loralab.models.head), and extrapolates a + b·length (+ c·length²
for attention that materialises its weights) to batch_size × max_length. With `auto`,
checkpointing turns on when that estimate exceeds the budget:

    CUDA   a quarter of the GPU memory free once the model is loaded (recomputing a forward
           pass costs ~30% more compute; memory there is the scarcer resource only when short)
    CPU    an eighth of the RAM free once the model is loaded (large activation sets also cost
           time on CPU: a step touches gigabytes of fresh pages; see docs/benchmarks.md)

and then checkpoints every n-th decoder layer, n as large as the budget allows (n = 1: every
layer). The choice, the estimate and the budget go into the run's notes and metrics.json.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from loralab.config import Config
from loralab.errors import ConfigError
from loralab.models.head import head_inputs
from loralab.models.placement import mixed_precision

PROBE_LENGTHS = (32, 64)
BUDGET_SHARE = {"cuda": 0.25, "cpu": 0.125}
MB = 2**20


@dataclass(frozen=True)
class CheckpointingChoice:
    setting: str                 # auto | true | false, as configured
    enabled: bool
    every_n_layers: int | None   # checkpoint layers 0, n, 2n, ... (None: off)
    activation_mb: float         # estimate without checkpointing, batch_size x max_length
    checkpointed_mb: float       # estimate with the chosen checkpointing
    budget_mb: float | None      # auto only
    free_mb: float | None
    attention: str               # the attention implementation the model runs

    def record(self) -> dict[str, Any]:
        return asdict(self)

    def note(self, batch: int, length: int) -> str:
        state = "off"
        if self.enabled:
            state = "on" if self.every_n_layers == 1 else \
                f"on for one decoder layer in {self.every_n_layers}"
        why = f"training.gradient_checkpointing={self.setting}"
        if self.budget_mb is not None:
            side = "over" if self.enabled else "within"
            why = (f"auto: {side} the budget of {self.budget_mb / 1024:.2f} GB, "
                   f"{self.budget_mb / self.free_mb:.1%} of the {self.free_mb / 1024:.1f} GB "
                   "free")
        return (f"gradient checkpointing {state} ({why}): the activations of batch {batch} x "
                f"{length} tokens are estimated at {self.activation_mb / 1024:.2f} GB without "
                f"it, {self.checkpointed_mb / 1024:.2f} GB as trained; attention: "
                f"{self.attention}")


def _saved_bytes(model: torch.nn.Module, length: int, device: torch.device,
                 vocab: int) -> int:
    """Bytes of the non-parameter tensors one forward pass of 1 x `length` saves."""
    params = {p.data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.data_ptr() not in params:
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, vocab, (1, length), device=device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), head_inputs(model):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
    return sum(storages.values())


def activation_bytes(model: torch.nn.Module, batch: int, length: int,
                     device: torch.device, autocast_dtype: torch.dtype | None) -> float:
    """The estimate of bytes saved for backward by a batch of `batch` x `length` tokens."""
    was_training = model.training
    model.train()
    vocab = model.get_input_embeddings().weight.shape[0]
    short, long = (min(n, length) for n in PROBE_LENGTHS)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32,
            enabled=autocast_dtype is not None):
        sizes = [_saved_bytes(model, n, device, vocab) for n in (short, long)]
    model.train(was_training)
    if long == short:
        return batch * sizes[0] * length / short
    per_token = [size / n for size, n in zip(sizes, (short, long))]
    quadratic = max((per_token[1] - per_token[0]) / (long - short), 0.0)
    linear = per_token[0] - quadratic * short
    return batch * (linear * length + quadratic * length * length)


def free_memory(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    import psutil

    return float(psutil.virtual_memory().available)


def checkpointed_bytes(total: float, layers: int, layer_input: float, every: int) -> float:
    """Saved bytes when layers 0, every, 2·every, ... keep only their input (and one of them
    is recomputed at a time in backward)."""
    per_layer = total / layers
    checkpointed = math.ceil(layers / every)
    return (layers - checkpointed) * per_layer + checkpointed * layer_input + per_layer


def choose(setting: bool | str, total: float, layers: int, layer_input: float,
           budget: float | None) -> int | None:
    """every_n_layers to checkpoint (None: off) for `setting`; auto: off within `budget`,
    else the largest n whose estimate fits (1 when none does)."""
    if setting is False:
        return None
    if setting is True:
        return 1
    if total <= budget:
        return None
    fits = [n for n in range(layers, 0, -1)
            if checkpointed_bytes(total, layers, layer_input, n) <= budget]
    return fits[0] if fits else 1


def apply_checkpointing(model: torch.nn.Module, config: Config,
                        device: torch.device) -> CheckpointingChoice:
    """Estimate, choose (training.gradient_checkpointing) and switch checkpointing on."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    setting = config.training.gradient_checkpointing
    batch, length = config.training.batch_size, config.model.max_length
    precision = mixed_precision(config.training.precision)
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = autocast if device.type == "cuda" else None
    total = activation_bytes(model, batch, length, device, autocast)
    text = base.config.get_text_config()
    layers = int(text.num_hidden_layers)
    width = (autocast or base.get_input_embeddings().weight.dtype).itemsize
    layer_input = batch * length * text.hidden_size * width
    free = free_memory(device) if setting == "auto" else None
    budget = free * BUDGET_SHARE.get(device.type, 0.125) if free is not None else None
    every = choose(setting, total, layers, layer_input, budget)
    if every is not None and not base.supports_gradient_checkpointing:
        if setting is True:
            raise ConfigError(f"training.gradient_checkpointing=true: {type(base).__name__} "
                              "does not support gradient checkpointing; set it to auto or "
                              "false")
        every = None  # auto: this architecture cannot, so it trains without
    if every is not None:
        base.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}, every_n_layers=every)
    kept = total if every is None else checkpointed_bytes(total, layers, layer_input, every)
    return CheckpointingChoice(
        str(setting).lower() if isinstance(setting, bool) else setting, every is not None,
        every, round(total / MB, 1), round(kept / MB, 1),
        None if budget is None else round(budget / MB, 1),
        None if free is None else round(free / MB, 1),
        getattr(base.config, "_attn_implementation", None) or "eager")
