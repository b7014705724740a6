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

from typing import Any

import numpy as np
import torch

from loralab.models.grammar.engine import fill_mask, mask_words, new_matcher

# -inf for a forbidden token (bit 0), 0 for an allowed one (bit 1), per logits dtype
PENALTIES = {dtype: np.array([-np.inf, 0.0], dtype=np.dtype(str(dtype).split(".")[-1]))
             for dtype in (torch.float32, torch.float16, torch.float64)}


def allowed_bits(words: torch.Tensor, width: int) -> np.ndarray:
    """A uint8 vector of `width`, 1 where a row's int32 bitmask (bit i of word i // 32)
    allows the token; tokens past the mask are not allowed (a model's logits may be wider
    than its tokenizer's vocabulary)."""
    bits = np.unpackbits(words.numpy().astype("<i4", copy=False).view(np.uint8),
                         bitorder="little")
    if bits.size < width:
        return np.concatenate([bits, np.zeros(width - bits.size, dtype=np.uint8)])
    return bits[:width]


def apply_bits(logits: torch.Tensor, bits: np.ndarray) -> None:
    """-inf where a token is not allowed, in place. CPU logits get a penalty vector added
    through numpy, on one thread (torch would split this small per-row op over its intra-op
    threads, which stalls when the cores are busy); other devices and dtypes: masked_fill."""
    penalty = PENALTIES.get(logits.dtype)
    if logits.device.type == "cpu" and penalty is not None and not logits.requires_grad:
        values = logits.numpy()
        np.add(values, np.take(penalty, bits), out=values)
    else:
        forbidden = torch.from_numpy(bits == 0).to(logits.device)
        logits.masked_fill_(forbidden, float("-inf"))


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
        bits = allowed_bits(self.words[0], logits.shape[-1])
        if not bits.any():  # cannot happen in a sound grammar; never all -inf
            bits = bits.copy()
            bits[self.eos_token_id] = 1
        apply_bits(logits, bits)

    def advance(self, token_id: int) -> None:
        """The row produced `token_id`; a forbidden one leaves the row in error (it ends)."""
        self.matcher.consume_token(int(token_id))
        self.tokens += 1

    @property
    def complete(self) -> bool:
        """The tokens so far are a whole document of the grammar (EOS may follow)."""
        return bool(self.matcher.is_accepting()) and not self.matcher.is_error()

    @property
    def stopped(self) -> bool:
        """Nothing can follow the tokens so far but EOS (the document's closing `}`), or the
        row is in error: a decode loop may end the row without spending a step on EOS."""
        return bool(self.matcher.is_stopped()) or bool(self.matcher.is_error())

    @property
    def error(self) -> str | None:
        return self.matcher.get_error() if self.matcher.is_error() else None
