"""The task-type interface: everything that differs between task types lives behind it.

A task knows how to build its label space, encode records into token ids, collate a batch,
compute the loss, say which examples are already predicted correctly (for the weighted
variant's regulariser), turn model outputs into per-example predictions, score them, and
render a prediction for the user. Training, evaluation and prediction code never branch on
the task name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from loralab.config import Config


class Task(ABC):
    name: str
    default_metric: str
    auto_model_class: str          # transformers Auto class that carries the head
    peft_task_type: str            # peft.TaskType name

    # ---------------------------------------------------------------- labels and encoding
    @abstractmethod
    def label_names(self, train: list[dict], config: Config) -> list[str] | None:
        """Label names in id order (None for regression)."""

    @abstractmethod
    def encode(self, records: list[dict], tokenizer: Any, labels: list[str] | None,
               max_length: int) -> list[dict[str, Any]]:
        """Token ids (unpadded) and a `labels` entry per record."""

    @abstractmethod
    def collator(self, tokenizer: Any) -> Any:
        """A callable turning a list of encoded features into a padded batch of tensors."""

    # ---------------------------------------------------------------- training
    @abstractmethod
    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean task loss of a batch."""

    @abstractmethod
    def correct(self, logits: torch.Tensor, labels: torch.Tensor,
                tolerance: float) -> torch.Tensor:
        """Bool tensor [batch]: the example is already predicted correctly."""

    # ---------------------------------------------------------------- evaluation
    @abstractmethod
    def gather(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        """Per-example predictions (label ids, values or word-level tag ids) from a batch."""

    @abstractmethod
    def metrics(self, predictions: list[Any], encoded: list[dict[str, Any]],
                labels: list[str] | None) -> dict[str, Any]:
        """Score per-example predictions against the encoded gold labels."""

    @abstractmethod
    def render(self, logits: torch.Tensor, record: dict, feature: dict[str, Any],
               labels: list[str] | None) -> dict[str, Any]:
        """A user-facing prediction for one example (logits of that example alone)."""

    # ---------------------------------------------------------------- hooks with defaults
    notes: list[str] = []
    model_kwargs: dict[str, Any] = {}  # extra forward() arguments for training and evaluation

    def configure(self, config: Config) -> None:  # noqa: B027 - optional hook, no-op here
        """Read what the task needs from the config (only causal_lm needs anything)."""

    def training_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor],
                      logits: torch.Tensor, labels: torch.Tensor
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to optimise and its named parts to log (none for a single-term loss)."""
        return self.loss(logits, labels), {}

    def has_gold(self, record: dict[str, Any]) -> bool:
        """The record carries a gold answer to score against."""
        return (record.get("label") if "label" in record else record.get("tags")) is not None

    def pack_training(self, features: list[dict[str, Any]],
                      max_length: int) -> list[dict[str, Any]]:
        """Training features as batched (causal_lm may pack short examples together)."""
        return features

    # ---------------------------------------------------------------- comparing two models
    # (export fidelity and `loralab verify`: the same inputs through a reference and a copy)
    generates: bool = False  # predictions are generated text: greedy output is compared too

    def text_record(self, text: str) -> dict[str, Any]:
        """A raw input text as this task's record (for probe inputs without a data file)."""
        return {"text": text, "text_pair": None}

    def decisions(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        """What each example of a batch gives its user, in a form two models' outputs can be
        compared by; by default the evaluation predictions (label ids, values, tag ids)."""
        return self.gather(logits, batch)

    def agreement(self, reference: list[Any], candidate: list[Any],
                  labels: list[str] | None) -> dict[str, float]:
        """How far a copy's decisions agree with the reference's. The keys are metrics of
        loralab.metrics.registry (producer "fidelity"): percentages or differences."""
        same = sum(r == c for r, c in zip(reference, candidate))
        return {"label_agreement": 100.0 * same / max(len(reference), 1)}

    # ---------------------------------------------------------------- helpers shared by tasks
    def baseline_metrics(self, encoded: list[dict[str, Any]],
                         labels: list[str] | None) -> dict[str, Any]:
        """Metrics of the trivial predictor (majority class / constant), for reports and tests."""
        raise NotImplementedError
