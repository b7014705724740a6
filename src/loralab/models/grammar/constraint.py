"""A compiled grammar and the per-row constraint that follows it while a row decodes.

    grammar = Grammar(json_grammar(schema), tokenizer)     one per schema and tokenizer
    row = grammar.constraint()                             one per generated row
    row.mask(logits)        in place: -inf on every token the grammar forbids next
    row.advance(token_id)   the row produced `token_id`

`mask` / `advance` is the per-row logits-processor shape that every decode loop of loralab
calls (batched generation in loralab.models.generate, and the server's decode step), so a
batch can mix rows of different grammars with rows that carry none. The tokenizer's EOS is
allowed exactly where the grammar accepts the document as complete; once the document
cannot continue, EOS is the only token left.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from loralab.models.grammar.engine import fill_mask, mask_words, new_matcher


@functools.lru_cache(maxsize=8)
def bit_positions(device: torch.device) -> torch.Tensor:
    return torch.arange(32, dtype=torch.int32, device=device)


def allowed_tokens(words: torch.Tensor, width: int) -> torch.Tensor:
    """A bool vector of `width` from a row's int32 bitmask; tokens past the mask are not
    allowed (a model's logits may be wider than its tokenizer's vocabulary)."""
    bits = words.unsqueeze(-1).bitwise_right_shift(bit_positions(words.device)).bitwise_and(1)
    allowed = bits.bool().flatten()
    if allowed.numel() < width:
        allowed = torch.cat([allowed, allowed.new_zeros(width - allowed.numel())])
    return allowed[:width]


class Grammar:
    """A grammar compiled for one tokenizer; shared by every row (and request) that uses it."""

    def __init__(self, grammar: str, tokenizer: Any, *, description: str = "") -> None:
        self.tokenizer = tokenizer
        self.description = description
        self.eos_token_id = int(tokenizer.eos_token_id)
        self.vocab_size = len(tokenizer)
        self._prototype = new_matcher(grammar, tokenizer)

    def constraint(self) -> GrammarConstraint:
        """A fresh row state at the start of the document."""
        return GrammarConstraint(self._prototype.deep_copy(), self.vocab_size,
                                 self.eos_token_id)


class GrammarConstraint:
    """One row's position in its grammar."""

    def __init__(self, matcher: Any, vocab_size: int, eos_token_id: int) -> None:
        self.matcher = matcher
        self.eos_token_id = eos_token_id
        self.words = mask_words(vocab_size)
        self.tokens = 0

    def mask(self, logits: torch.Tensor) -> None:
        """In place on one row's next-token logits [vocab]: -inf where the grammar forbids."""
        fill_mask(self.matcher, self.words)
        allowed = allowed_tokens(self.words[0].to(logits.device), logits.shape[-1])
        if not bool(allowed.any()):  # cannot happen in a sound grammar; never all -inf
            allowed[self.eos_token_id] = True
        logits.masked_fill_(~allowed, float("-inf"))

    def advance(self, token_id: int) -> None:
        """The row produced `token_id`; a forbidden one leaves the row in error (it ends)."""
        self.matcher.consume_token(int(token_id))
        self.tokens += 1

    @property
    def complete(self) -> bool:
        """The tokens so far are a whole document of the grammar (EOS may follow)."""
        return bool(self.matcher.is_accepting()) and not self.matcher.is_error()

    @property
    def error(self) -> str | None:
        return self.matcher.get_error() if self.matcher.is_error() else None
