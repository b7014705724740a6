"""Run a model over encoded examples and score the predictions with the task's metrics."""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from loralab.tasks import Task
from loralab.training.batches import make_loader


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: Task, features: list[dict[str, Any]],
             labels: list[str] | None, tokenizer: Any, batch_size: int, *,
             autocast: Any = None, progress: bool = True, desc: str = "eval") -> dict[str, Any]:
    """Metrics (plain names) plus `loss` over `features`, which must carry gold labels."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loader = make_loader(features, task.collator(tokenizer), batch_size, train=False)
    predictions: list[Any] = []
    loss_sum, count = 0.0, 0
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        batch = {k: v.to(device) for k, v in batch.items()}
        gold = batch.pop("labels")
        with autocast() if autocast else torch.autocast("cpu", enabled=False):
            logits = model(**batch, **task.model_kwargs).logits
        loss_sum += float(task.loss(logits, gold)) * gold.shape[0]
        count += gold.shape[0]
        predictions.extend(task.gather(logits, {**batch, "labels": gold}))
    model.train(was_training)
    metrics = task.metrics(predictions, features, labels)
    metrics.setdefault("loss", loss_sum / max(count, 1))  # causal_lm: token-weighted already
    return metrics
