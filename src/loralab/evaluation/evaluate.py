"""Run a model over encoded examples and score the predictions with the task's metrics.

Under `accelerate launch` / `torchrun` each process evaluates its shard of the examples and
`gather_for_metrics` puts every example's prediction and loss back in order, once each (the
last batch's padding duplicates are dropped), so every process computes the same metrics.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from loralab.data.batches import make_loader
from loralab.tasks import Task


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: Task, features: list[dict[str, Any]],
             labels: list[str] | None, tokenizer: Any, batch_size: int, *,
             autocast: Any = None, progress: bool = True, desc: str = "eval",
             accelerator: Any = None) -> dict[str, Any]:
    """Metrics plus `loss` (the mean of the examples' losses) over `features`, which must
    carry gold labels. With `accelerator` (several processes) the examples are sharded."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loader = make_loader(features, task.collator(tokenizer), batch_size, train=False)
    sharded = accelerator is not None and accelerator.num_processes > 1
    if sharded:
        loader = accelerator.prepare_data_loader(loader)
    predictions: list[Any] = []
    losses: list[float] = []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        batch = {k: v.to(device) for k, v in batch.items()}
        gold = batch.pop("labels")
        with autocast() if autocast else torch.autocast("cpu", enabled=False):
            items = task.evaluation_items(model, batch, gold)
        if sharded:
            items = accelerator.gather_for_metrics(items, use_gather_object=True)
        predictions.extend(p for p, _ in items)
        losses.extend(loss for _, loss in items)
    model.train(was_training)
    metrics = task.metrics(predictions, features, labels)
    metrics.setdefault("loss", sum(losses) / max(len(losses), 1))  # causal: token-weighted
    return metrics
