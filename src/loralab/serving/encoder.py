"""The encoder engine: one base encoder (with its task family's head class), many adapters.

Rows of any attached adapter (and base-model rows, slot 0) run in one forward pass; each row's
logits come back sliced to its own adapter's head width. Rows are sorted by length and cut
into batches of at most `max_batch_size`; a batch is also cut where padding to the next
(longer) row would waste more than `MAX_PADDING` of its tokens, so little compute goes to
padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from loralab.serving.engine import MixedEngine
from loralab.serving.engine_api import ServedEngine
from loralab.tasks import Task
from loralab.tasks.base import ServingBase

MAX_PADDING = 0.2       # share of a batch's tokens that may be padding
MIN_SPLIT_ROWS = 8      # never cut a batch smaller than this for padding's sake


def length_batches(lengths: list[int], max_rows: int) -> list[list[int]]:
    """Row indices in batches: sorted by length, at most max_rows each, cut where padding
    would pass MAX_PADDING (batches of fewer than MIN_SPLIT_ROWS rows are not cut)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        longest = lengths[i]
        padded = (len(current) + 1) * longest
        wasteful = current and len(current) >= MIN_SPLIT_ROWS and \
            padded - (total + longest) > MAX_PADDING * padded
        if current and (len(current) >= max_rows or wasteful):
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += longest
    if current:
        batches.append(current)
    return batches


@dataclass
class EncoderRow:
    feature: dict[str, Any]     # one encoded example (task.encode)
    slot: int
    width: int = 0              # the adapter's head outputs (0: not needed, e.g. embeddings)


class EncoderEngine(MixedEngine, ServedEngine):
    """Classification (logits sliced to each adapter's head) and embeddings."""

    serves = "classify"
    base_kind = "embed"
    routes = frozenset({"classify", "embed"})
    use_instead = "/v1/classify or /v1/embeddings"
    what = "text encoder"

    def __init__(self, name: str, base: ServingBase, task: Task, device: torch.device,
                 max_batch_size: int = 64) -> None:
        super().__init__(base.model, device, required_saved=base.new_heads)
        self.name = name
        self.note = base.note
        self.tokenizer = base.tokenizer
        self.collate = task.collator(base.tokenizer)
        self.max_batch_size = max_batch_size

    def make_rows(self, route: str, items: list[Any], slot: int,
                  width: int = 0) -> list[EncoderRow]:
        """`items` are encoded features (Task.encode, or the tokenizer's for embeddings)."""
        return [EncoderRow(f, slot, width) for f in items]

    def run(self, route: str, rows: list[Any]) -> list[Any]:
        return self.embed(rows) if route == "embed" else self.logits(rows)

    def _batches(self, rows: list[EncoderRow]) -> list[list[int]]:
        return length_batches([len(r.feature["input_ids"]) for r in rows], self.max_batch_size)

    def _inputs(self, rows: list[EncoderRow]) -> dict[str, torch.Tensor]:
        features = [{k: v for k, v in r.feature.items() if k != "labels" and not
                     k.startswith("_")} for r in rows]
        batch = self.collate(features)
        batch.pop("labels", None)
        return {k: v.to(self.device) for k, v in batch.items()}

    def logits(self, rows: list[EncoderRow]) -> list[torch.Tensor]:
        """Each row's logits (CPU, its adapter's width), in the order given."""
        out: list[torch.Tensor | None] = [None] * len(rows)
        for index in self._batches(rows):
            chunk = [rows[i] for i in index]
            with self.rows([r.slot for r in chunk]):
                logits = self.model(**self._inputs(chunk)).logits.float().cpu()
            for i, row, values in zip(index, chunk, logits):
                out[i] = values[..., : row.width] if row.width else values
        return out  # type: ignore[return-value]

    def embed(self, rows: list[EncoderRow]) -> list[torch.Tensor]:
        """Mean-pooled last hidden states (the base encoder, or an adapter's LoRA on it)."""
        out: list[torch.Tensor | None] = [None] * len(rows)
        for index in self._batches(rows):
            chunk = [rows[i] for i in index]
            inputs = self._inputs(chunk)
            with self.rows([r.slot for r in chunk]):
                hidden = self.model.base_model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu()
            for i, values in zip(index, pooled):
                out[i] = values
        return out  # type: ignore[return-value]
