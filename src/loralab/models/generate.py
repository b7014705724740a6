"""Batched generation for evaluation: left-padded prompts, greedy or sampled, stop strings.

Prompts are generated in batches of similar length (sorted, then put back in order), so little
compute goes to padding; the output is the new text only, cut at the first stop string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm


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
    ensure_pad_token(tokenizer)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: dict[int, str] = {}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(decoding.seed)
    try:
        starts = range(0, len(order), decoding.batch_size)
        for start in tqdm(starts, desc=desc, leave=False, disable=not progress):
            chunk = order[start:start + decoding.batch_size]
            texts = generate_batch(model, tokenizer, [prompts[i] for i in chunk], decoding,
                                   add_special_tokens, device)
            outputs.update(zip(chunk, texts))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
        torch.random.set_rng_state(generator_state)
    return [outputs[i] for i in range(len(prompts))]


def generate_batch(model: torch.nn.Module, tokenizer: Any, prompts: list[str],
                   decoding: Decoding, add_special_tokens: bool, device: Any) -> list[str]:
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
        kwargs.update(stop_strings=decoding.stop, tokenizer=tokenizer)
    out = model.generate(**enc, **kwargs)
    new_tokens = out[:, enc["input_ids"].shape[1]:]
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [cut_at_stop(t, decoding.stop).strip() for t in texts]
