"""Per-row decoding state for mixed-adapter generation: next-token choice (greedy, or
temperature / top-p sampling from the row's own seeded generator), EOS and stop strings,
the row's grammar constraint (response_format), and the streamed text deltas (held back while
they could still be the start of a stop string or an incomplete UTF-8 character).

Whatever decode loop runs the rows calls `next_tokens(logits, rows)` for each step's
last-position logits and `row.push(token)` for each chosen token; a constrained row's logits
are masked (a copy, before temperature and top-p) inside next_tokens and its parser advanced
inside push, so free rows beside it decode exactly as in a batch of free rows."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from loralab.models.row_constraints import RowConstraint

_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def tokenizer_lock(tokenizer: Any) -> threading.Lock:
    """One lock per tokenizer object: a fast tokenizer used from two threads at once (the
    event loop encoding prompts, the engine thread decoding) can fail with "Already
    borrowed"."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(tokenizer), threading.Lock())


@dataclass
class Sampling:
    max_tokens: int = 16
    temperature: float = 1.0          # 0: greedy
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class GenerationRow:
    """One sequence to generate; the engine fills `token_ids`, `text`, `finish_reason`."""
    prompt_ids: list[int]
    slot: int
    sampling: Sampling
    tokenizer: Any
    eos_ids: set[int]
    on_event: Callable[[str, str | None], None] | None = None   # (text delta, finish reason)
    cancelled: Callable[[], bool] = lambda: False
    constraint: RowConstraint | None = None      # None: free text
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    _sent: int = 0
    _generator: torch.Generator | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None:
            seed = self.sampling.seed
            self._generator = torch.Generator(device=device).manual_seed(
                seed if seed is not None else random.SystemRandom().randrange(2 ** 63))
        return self._generator

    def push(self, token: int) -> bool:
        """Take one generated token; True when the row is finished."""
        if token in self.eos_ids:
            return self.finish("stop")
        self.token_ids.append(token)
        if self.constraint is not None:
            self.constraint.advance(token)
        with tokenizer_lock(self.tokenizer):
            text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        cuts = [text.find(s) for s in self.sampling.stop if s and s in text]
        if cuts:
            self.text = text[: min(cuts)]
            return self.finish("stop")
        self.text = text
        if self.document_ended:
            return self.finish("stop")
        if len(self.token_ids) >= self.sampling.max_tokens:
            return self.finish("length")
        self._stream(final=False)
        return False

    @property
    def document_ended(self) -> bool:
        """A constrained row whose document is whole and nothing but EOS can follow: it ends
        now ("stop") instead of spending a decode step on the EOS."""
        c = self.constraint
        return c is not None and c.complete and bool(getattr(c, "stopped", False))

    def finish(self, reason: str) -> bool:
        self.finish_reason = reason
        self._stream(final=True)
        return True

    def _stream(self, *, final: bool) -> None:
        if self.on_event is None:
            return
        end = len(self.text)
        if not final:
            hold = max((len(s) - 1 for s in self.sampling.stop), default=0)
            end = max(self._sent, end - hold)
            while end > self._sent and self.text[end - 1] == "\ufffd":
                end -= 1
        if end > self._sent or final:
            self.on_event(self.text[self._sent:end], self.finish_reason if final else None)
            self._sent = end


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits outside the smallest set of tokens whose probability reaches top_p -> -inf."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    drop = cumulative > top_p
    drop[1:] = drop[:-1].clone()      # keep the token that crosses top_p
    drop[0] = False
    filtered = logits.clone()
    filtered[order[drop]] = float("-inf")
    return filtered


def next_tokens(logits: torch.Tensor, rows: list[GenerationRow]) -> list[int]:
    """The next token of every row from its last-position logits [rows, vocab]. A constrained
    row chooses from a masked fp32 copy of its logits (the model's are an inference tensor,
    and the other rows' must stay as they are); free rows' logits are never touched."""
    chosen = logits.argmax(dim=-1).tolist()
    for i, row in enumerate(rows):
        scores = logits[i]
        if row.constraint is not None:
            scores = scores.to(torch.float32, copy=True)
            row.constraint.mask(scores)
            if row.sampling.greedy:
                chosen[i] = int(scores.argmax())
        if row.sampling.greedy:
            continue
        scores = top_p_filter(scores.float() / row.sampling.temperature, row.sampling.top_p)
        probs = torch.softmax(scores, dim=-1)
        chosen[i] = int(torch.multinomial(probs, 1, generator=row.generator(probs.device)))
    return chosen
