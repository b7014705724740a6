"""One model's outputs on the probe inputs: logits, the task's decisions, greedy continuations,
and how long the forward passes took.

Greedy continuations come from each model's own `generate`: transformers' (with its KV cache)
for PyTorch models, the no-cache loop of loralab.export.onnx_model for an ONNX graph.

A "model" here is anything called like a transformers model that returns `.logits`: a PeftModel,
a merged transformers model, or an ONNX Runtime session behind loralab.export.onnx_model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from loralab.tasks import Task

NEW_TOKENS = 16


@dataclass
class ModelOutputs:
    runtime: str
    logits: list[torch.Tensor]             # one fp32 tensor per batch, on the CPU
    decisions: list[Any]
    continuations: list[list[int]] = field(default_factory=list)
    seconds: float = 0.0
    examples: int = 0

    @property
    def throughput(self) -> float:
        """Examples per second of the forward passes (generation excluded)."""
        return self.examples / self.seconds if self.seconds > 0 else 0.0


def forward_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


@torch.no_grad()
def logits_of(model: Any, batch: dict[str, torch.Tensor], task: Task) -> torch.Tensor:
    return model(**forward_inputs(batch), **task.model_kwargs).logits.float().cpu()


@torch.no_grad()
def greedy_continuation(model: Any, prompt: list[int], tokenizer: Any,
                        new_tokens: int = NEW_TOKENS) -> list[int]:
    """The greedy continuation of one prompt by the model's own `generate` (transformers' with
    its KV cache; an ONNX export's no-cache loop), stopping at EOS."""
    ids = torch.tensor([prompt], dtype=torch.long)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                         max_new_tokens=new_tokens, do_sample=False,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None,
                         top_k=None)
    new = out[0, len(prompt):].tolist()
    return new[:new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new


def run_model(model: Any, task: Task, batches: list[dict[str, torch.Tensor]],
              prompts: list[list[int]], tokenizer: Any) -> ModelOutputs:
    logits, decisions = [], []
    if batches:
        logits_of(model, batches[0], task)  # warm-up: first calls pay one-off set-up costs
    start = time.perf_counter()
    for batch in batches:
        out = logits_of(model, batch, task)
        logits.append(out)
        decisions.extend(task.decisions(out, batch))
    seconds = time.perf_counter() - start
    continuations = [greedy_continuation(model, p, tokenizer) for p in prompts] \
        if task.generates else []
    examples = sum(int(b["input_ids"].shape[0]) for b in batches)
    return ModelOutputs(getattr(model, "runtime", "torch"), logits, decisions, continuations,
                        seconds, examples)
