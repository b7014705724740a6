"""Per-row constraints on what a decoding row may produce next, and the Hugging Face logits
processor that applies them inside `model.generate`.

A row constraint is any object with

    mask(logits)        in place on the row's next-token logits [vocab]: -inf where forbidden
    advance(token_id)   the row produced `token_id`
    complete            (property) the tokens so far are a whole answer

(loralab.models.grammar.GrammarConstraint is one; a decode loop never asks which.) A batch can
mix rows of different constraints with free rows (None): free rows' logits are not touched,
so they decode exactly as they would without the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from transformers import LogitsProcessor


class RowConstraint(Protocol):
    def mask(self, logits: torch.Tensor) -> None: ...

    def advance(self, token_id: int) -> None: ...

    @property
    def complete(self) -> bool: ...


class ConstraintSource(Protocol):
    """Where rows get their constraint from (a compiled grammar): a fresh state per row."""

    def constraint(self) -> RowConstraint: ...


class RowConstraints(LogitsProcessor):
    """Each row's constraint (None: free) masking that row's logits at every step.

    transformers calls the processor with the tokens so far: from the second call on, the
    last column is the token each row just produced, which advances its constraint first.
    A row that produced EOS is done: neither advanced nor masked again (its padding is not
    an answer token). `catch_up` feeds the tokens of the last step, which no call saw."""

    def __init__(self, sources: Sequence[ConstraintSource | None],
                 eos_token_id: int | None = None) -> None:
        self.rows: list[RowConstraint | None] = [None if s is None else s.constraint()
                                                  for s in sources]
        self.constrained = torch.tensor([r is not None for r in self.rows], dtype=torch.bool)
        self.any = bool(self.constrained.any())
        self.seen = [0] * len(self.rows)
        self.done = [False] * len(self.rows)
        self.prompt_width: int | None = None
        self.eos_token_id = eos_token_id

    def __call__(self, input_ids: torch.LongTensor,
                 scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_width is None:
            self.prompt_width = input_ids.shape[1]
        else:
            self.catch_up(input_ids[:, self.prompt_width:].tolist())
        for i, row in enumerate(self.rows):
            if row is not None and not self.done[i]:
                row.mask(scores[i])
        return scores

    def catch_up(self, new_tokens: list[list[int]]) -> None:
        """Advance every constrained row through the generated tokens it has not seen."""
        for i, row in enumerate(self.rows):
            if row is None or self.done[i]:
                continue
            for token in new_tokens[i][self.seen[i]:]:
                self.seen[i] += 1
                row.advance(token)
                if token == self.eos_token_id:
                    self.done[i] = True
                    break
