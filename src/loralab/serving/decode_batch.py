"""The rows decoding now on one causal engine, and their KV cache: iteration-level scheduling.

    batch = DecodeBatch(engine)
    batch.admit(rows)        prefill new rows and join them to the running ones
    finished = batch.step()  one token for every row; finished / cancelled rows leave at once

New rows can be admitted before any step: their prompts are prefilled together (left-padded),
and their cache is appended row-wise to the running rows' cache, the shorter of the two
left-padded with zeros that the attention mask hides (the batch concatenation of TGI's
causal-LM batches). Position ids are per row (real tokens so far), so a row decodes exactly
as it would alone. When rows leave, cache columns that only padding still occupies are
dropped. A model whose cache cannot be joined row-wise (sliding-window or quantised layers,
`kv_cache.can_merge`) admits new rows only when the batch is empty (one cohort at a time).
"""

from __future__ import annotations

from typing import Any

import torch

from loralab.models.kv_cache import append_rows, can_merge, drop_left, new_cache
from loralab.serving.multi_lora import BatchPlan
from loralab.serving.sampling import GenerationRow, next_tokens


class DecodeBatch:
    """Live rows with their cache, attention mask, positions and last logits."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._reset()

    def _reset(self) -> None:
        self.rows: list[GenerationRow] = []
        self.cache: Any = None
        self.mask: torch.Tensor | None = None           # [rows, cached + 1 columns]
        self.positions: torch.Tensor | None = None      # [rows, 1]: the last position
        self.logits: torch.Tensor | None = None         # [rows, vocab]: the next token's
        self.plan: BatchPlan | None = None
        self.joinable = True

    def __len__(self) -> int:
        return len(self.rows)

    def room(self) -> int:
        """How many rows may be admitted now."""
        if self.rows and not self.joinable:
            return 0
        return max(0, self.engine.max_batch_size - len(self.rows))

    def admit(self, rows: list[GenerationRow]) -> list[GenerationRow]:
        """Prefill `rows` and join them; returns the rows that were cancelled instead."""
        dropped = [r for r in rows if r.cancelled()]
        for row in dropped:
            row.finish_reason = "cancelled"
        rows = [r for r in rows if not r.cancelled()]
        if not rows:
            return dropped
        engine = self.engine
        inputs = engine._prefill_inputs(rows)
        cache = new_cache(engine.model)
        plan = BatchPlan.of([r.slot for r in rows], engine.device)
        logits = engine._step(plan, inputs, cache)
        if not self.rows:
            self.rows, self.cache, self.plan, self.logits = rows, cache, plan, logits
            self.mask = inputs["attention_mask"]
            self.positions = inputs["position_ids"][:, -1:]
            self.joinable = can_merge(cache)
            return dropped
        self._join(rows, cache, inputs, logits)
        return dropped

    def _join(self, rows: list[GenerationRow], cache: Any, inputs: dict[str, torch.Tensor],
              logits: torch.Tensor) -> None:
        append_rows(self.cache, cache)
        mask = inputs["attention_mask"]
        width = max(self.mask.shape[1], mask.shape[1])
        self.mask = torch.cat([pad_mask(self.mask, width), pad_mask(mask, width)])
        self.positions = torch.cat([self.positions, inputs["position_ids"][:, -1:]])
        self.logits = torch.cat([self.logits, logits])
        self.rows = self.rows + rows
        self.plan = BatchPlan.of(self.plan.slot_list + [r.slot for r in rows],
                                 self.engine.device)

    def step(self) -> list[GenerationRow]:
        """Choose every row's next token, retire the rows that finished (or were cancelled),
        and run one decode step for the rest. Returns the retired rows."""
        if not self.rows:
            return []
        tokens = next_tokens(self.logits, self.rows)
        keep, done = [], []
        for i, (row, token) in enumerate(zip(self.rows, tokens)):
            if row.cancelled():
                row.finish_reason = "cancelled"
                done.append(row)
            elif row.push(token):
                done.append(row)
            else:
                keep.append(i)
        if not keep:
            self._reset()
            return done
        if len(keep) < len(self.rows):
            self._select(keep)
            tokens = [tokens[i] for i in keep]
        self._decode(tokens)
        return done

    def _select(self, keep: list[int]) -> None:
        index = torch.tensor(keep, dtype=torch.long, device=self.engine.device)
        self.cache.batch_select_indices(index)
        self.mask, self.positions = self.mask[index], self.positions[index]
        self.rows = [self.rows[i] for i in keep]
        self.plan = self.plan.subset(keep)
        unused = int(self.mask.any(dim=0).long().argmax())    # leading all-padding columns
        if unused and self.joinable:      # other layers keep lengths of their own
            drop_left(self.cache, unused)
            self.mask = self.mask[:, unused:]

    def _decode(self, tokens: list[int]) -> None:
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=1)
        self.positions = self.positions + 1
        step = {"input_ids": torch.tensor(tokens, device=self.engine.device).unsqueeze(1),
                "attention_mask": self.mask, "position_ids": self.positions}
        self.logits = self.engine._step(self.plan, step, self.cache)

    def fail(self) -> list[GenerationRow]:
        """Drop every row (after a failed forward pass); returns them."""
        rows = self.rows
        self._reset()
        return rows


def pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pad an attention mask with zeros to `width` columns."""
    missing = width - mask.shape[1]
    return mask if missing == 0 else torch.cat([mask.new_zeros(len(mask), missing), mask], 1)
