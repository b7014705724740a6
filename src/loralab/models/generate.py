"""Batched generation for evaluation: left-padded prompts, greedy or sampled, stop strings, and
per-row constraints (grammar-constrained rows mixed with free ones in one batch).

Prompts are generated in batches of similar length (sorted, then put back in order), so little
compute goes to padding; the output is the new text only, cut at the first stop string.
A row's constraint (loralab.models.row_constraints) masks its logits before temperature and
top-p; stop strings apply to free rows only (a constrained row ends where its grammar does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList, StopStringCriteria

from loralab.models.row_constraints import ConstraintSource, RowConstraints


@dataclass
class Decoding:
    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    batch_size: int = 16
    seed: int = 0

    @classmethod
    def from_config(cls, eval_cfg: Any, seed: int = 0) -> Decoding:
        return cls(eval_cfg.max_new_tokens, eval_cfg.do_sample, eval_cfg.temperature,
                   eval_cfg.top_p, list(eval_cfg.stop), eval_cfg.batch_size, seed)


@dataclass
class Generation:
    """One row's answer and why it ended: `eos`, `stop` (a stop string) or `length`
    (max_new_tokens). `complete` is None for a free row, else whether the constrained
    answer is a whole document of its grammar (False: cut at max_new_tokens mid-document)."""
    text: str
    finish: str
    tokens: int
    complete: bool | None = None


def cut_at_stop(text: str, stop: list[str]) -> str:
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[:min(cuts)] if cuts else text


def ensure_pad_token(tokenizer: Any) -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


@torch.no_grad()
def generate_texts(model: torch.nn.Module, tokenizer: Any, prompts: list[str],
                   decoding: Decoding, *, add_special_tokens: bool = True,
                   progress: bool = False, desc: str = "generate") -> list[str]:
    """The generated continuation of each prompt (same order as `prompts`)."""
    return [g.text for g in generate(model, tokenizer, prompts, decoding,
                                     add_special_tokens=add_special_tokens,
                                     progress=progress, desc=desc)]


@torch.no_grad()
def generate(model: torch.nn.Module, tokenizer: Any, prompts: list[str], decoding: Decoding,
             *, constraints: Sequence[ConstraintSource | None] | None = None,
             add_special_tokens: bool = True, progress: bool = False,
             desc: str = "generate") -> list[Generation]:
    """Each prompt's Generation, in order. `constraints[i]` (None: free) is where row i's
    constraint comes from: anything with `.constraint()` returning a fresh row state."""
    ensure_pad_token(tokenizer)
    sources = list(constraints) if constraints is not None else [None] * len(prompts)
    if len(sources) != len(prompts):
        raise ValueError(f"{len(sources)} constraints for {len(prompts)} prompts")
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: dict[int, Generation] = {}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(decoding.seed)
    try:
        starts = range(0, len(order), decoding.batch_size)
        for start in tqdm(starts, desc=desc, leave=False, disable=not progress):
            chunk = order[start:start + decoding.batch_size]
            rows = RowConstraints([sources[i] for i in chunk], tokenizer.eos_token_id)
            results = generate_batch(model, tokenizer, [prompts[i] for i in chunk], decoding,
                                     add_special_tokens, device, rows)
            outputs.update(zip(chunk, results))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
        torch.random.set_rng_state(generator_state)
    return [outputs[i] for i in range(len(prompts))]


class FreeRowsOnly(StoppingCriteria):
    """A stopping criterion that ends free rows only (constrained rows end with their
    grammar)."""

    def __init__(self, inner: StoppingCriteria, free: torch.Tensor) -> None:
        self.inner, self.free = inner, free

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor,
                 **kwargs: Any) -> torch.Tensor:
        return self.inner(input_ids, scores, **kwargs) & self.free.to(input_ids.device)


def generate_batch(model: torch.nn.Module, tokenizer: Any, prompts: list[str],
                   decoding: Decoding, add_special_tokens: bool, device: Any,
                   rows: RowConstraints | None = None) -> list[Generation]:
    rows = rows or RowConstraints([None] * len(prompts), tokenizer.eos_token_id)
    enc = tokenizer(prompts, return_tensors="pt", padding=True,
                    add_special_tokens=add_special_tokens).to(device)
    kwargs: dict[str, Any] = {"max_new_tokens": decoding.max_new_tokens,
                              "do_sample": decoding.do_sample,
                              "pad_token_id": tokenizer.pad_token_id,
                              "eos_token_id": tokenizer.eos_token_id}
    if decoding.do_sample:
        kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p)
    else:  # greedy: silence sampling settings a model's generation_config may carry
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if decoding.stop:
        stop = StopStringCriteria(tokenizer=tokenizer, stop_strings=decoding.stop)
        kwargs["stopping_criteria"] = StoppingCriteriaList(
            [FreeRowsOnly(stop, ~rows.constrained) if rows.any else stop])
    if rows.any:
        kwargs["logits_processor"] = [rows]
    out = model.generate(**enc, **kwargs)
    new_tokens = out[:, enc["input_ids"].shape[1]:].tolist()
    rows.catch_up(new_tokens)
    return [finished(tokenizer, tokens, decoding, row)
            for tokens, row in zip(new_tokens, rows.rows)]


def finished(tokenizer: Any, tokens: list[int], decoding: Decoding, row: Any) -> Generation:
    """A row's text (cut at EOS and, for a free row, at its first stop string) and why it
    ended."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ended = eos in tokens
    kept = tokens[:tokens.index(eos)] if ended else tokens
    while kept and kept[-1] == pad:  # a row stopped early (a stop string) is padded
        kept = kept[:-1]
    text = tokenizer.decode(kept, skip_special_tokens=True)
    finish = "eos" if ended else "length"
    if row is None:
        cut = cut_at_stop(text, decoding.stop)
        if cut != text or (not ended and len(tokens) < decoding.max_new_tokens):
            finish = "stop"
        return Generation(cut.strip(), finish, len(kept))
    return Generation(text.strip(), finish, len(kept), complete=row.complete)
