"""The task-type interface: everything that differs between task types lives behind it.

A task knows
- its data: the record shape it reads (`records`, a RecordSpec the data layer understands),
  its label space, how records become token ids and padded batches;
- its model: which model to build for training (`build_model`: an encoder with a head, or a
  causal LM; GGUF and QLoRA), whether it trains at all (`trains`), how an adapter folder (or
  the base model alone) loads for inference (`load_model`);
- its training: the loss and its named terms, which examples are already right (the weighted
  variant's regulariser), anything to prepare before training (`prepare_training`);
- its evaluation: per-example predictions, metrics, the trivial baseline's metrics and the
  names of the metrics it will report (`metric_names`, for up-front checks);
- its predictions: how prediction inputs are read and completed (`input_spec`,
  `prepare_inputs`), how a batch is predicted (`predict`) and one result rendered (`render`).

Training, evaluation, prediction, serving and export code call these and never branch on the
task name. `EncoderTask` (loralab.tasks.encoder) implements the model side for encoders.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from loralab.config import Config
from loralab.data.spec import RecordSpec
from loralab.errors import ConfigError, UserError
from loralab.models.build import BuiltModel
from loralab.models.generate import Generation
from loralab.models.placement import Placement
from loralab.tasks.inputs import check_prediction_inputs


@dataclass
class TrainingOutput:
    """One training forward pass: the loss to run backward on, its named terms to log (none
    for a single-term loss), and the scores the task's `correct` reads (an encoder's logits)."""
    loss: torch.Tensor
    parts: dict[str, torch.Tensor]
    scores: torch.Tensor


@dataclass
class ServingBase:
    """The base model `loralab serve` attaches adapters to, built by the task."""
    model: torch.nn.Module
    tokenizer: Any
    new_heads: list[str]          # newly initialised modules: every adapter must save its own
    note: str | None = None       # a choice worth logging (e.g. a 4-bit adapter on a 16-bit base)


class Task(ABC):
    name: str
    default_metric: str            # a registry name or alias (loralab.metrics.metric_registry)
    auto_model_class: str          # transformers Auto class that carries the head
    peft_task_type: str            # peft.TaskType name
    records: RecordSpec            # the record shape this task reads from data files
    # the base model alone answers this task (a causal LM does; an encoder's head is trained)
    base_model_answers: bool = False
    notes: list[str] = []
    model_kwargs: dict[str, Any] = {}  # extra forward() arguments for training and evaluation
    serves: str = "classify"       # what a served adapter answers: "classify" or "generate"

    def configure(self, config: Config) -> None:  # noqa: B027 - optional hook, no-op here
        """Read what the task needs from the config (only causal_lm needs anything)."""

    # ---------------------------------------------------------------- labels and encoding
    @abstractmethod
    def label_names(self, train: list[dict], config: Config) -> list[str] | None:
        """Label names in id order (None for regression and causal LMs)."""

    @abstractmethod
    def encode(self, records: list[dict], tokenizer: Any, labels: list[str] | None,
               max_length: int) -> list[dict[str, Any]]:
        """Token ids (unpadded) and a `labels` entry per record."""

    @abstractmethod
    def collator(self, tokenizer: Any) -> Any:
        """A callable turning a list of encoded features into a padded batch of tensors."""

    def pack_training(self, features: list[dict[str, Any]],
                      max_length: int) -> list[dict[str, Any]]:
        """Training features as batched (causal_lm may pack short examples together)."""
        return features

    def has_gold(self, record: dict[str, Any]) -> bool:
        """The record carries a gold answer to score against."""
        return (record.get("label") if "label" in record else record.get("tags")) is not None

    # ---------------------------------------------------------------- model
    def head_kwargs(self, labels: list[str] | None) -> dict[str, Any]:
        """from_pretrained arguments that size the task's head ({} where it has none)."""
        return {}

    @abstractmethod
    def build_model(self, config: Config, labels: list[str] | None,
                    placement: Placement) -> BuiltModel:
        """The model to train (base + head + LoRA, or the no-LoRA baseline) and its tokenizer."""

    def load_tokenizer(self, config: Config) -> Any:
        """The base model's tokenizer alone (no weights): `train --dry-run` encodes with it."""
        from loralab.models.tokenizer import load_tokenizer

        model = config.model
        return load_tokenizer(model.name, revision=model.revision,
                              trust_remote_code=model.trust_remote_code)

    @abstractmethod
    def load_model(self, config: Config, labels: list[str] | None, adapter: Path | None,
                   placement: Placement) -> tuple[torch.nn.Module, Any]:
        """(model in eval mode, tokenizer) for inference: the adapter folder on its base, or
        with `adapter` None the base model alone."""

    def load_serving_base(self, config: Config, labels: list[str] | None,
                          placement: Placement) -> ServingBase:
        """The base model `loralab serve` shares between this task's adapters (no adapter
        attached), by the same rules as `load_model`: an adapter's own labels size the head,
        dtype and precision follow the task's placement rule."""
        raise UserError(f"model.task {self.name} cannot be served")

    def build_adapters(self, named: list[tuple[str, Config]],
                       placement: Placement) -> list[BuiltModel]:
        """One base model with an adapter per (name, config), the models shared (`adapters:`
        configs); only tasks without a per-adapter head can."""
        raise ConfigError(f"model.task {self.name} cannot train several adapters on one base "
                          "model (its head is one module sized by its labels); train one "
                          "config per adapter")

    def load_adapters(self, config: Config, folders: dict[str, Path],
                      placement: Placement) -> tuple[torch.nn.Module, Any]:
        """(model in eval mode with every adapter folder attached under its name, the first
        active; tokenizer), the base model loaded once."""
        raise UserError(f"model.task {self.name} adapters cannot share one loaded base model "
                        "here; load each adapter folder on its own")

    def trains(self, config: Config) -> bool:
        """False when the run only evaluates (a causal LM's no-LoRA baseline)."""
        return True

    def head_rows_match(self, rows: int | None) -> bool:
        """A plain PEFT adapter whose saved classifier has `rows` outputs is of this task."""
        return True

    # ---------------------------------------------------------------- training
    @abstractmethod
    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean task loss of a batch."""

    @abstractmethod
    def correct(self, scores: torch.Tensor, labels: torch.Tensor,
                tolerance: float) -> torch.Tensor:
        """Bool tensor [batch]: the example is already predicted correctly (`scores`: those of
        training_forward, an encoder's logits)."""

    def training_forward(self, model: torch.nn.Module, unwrapped: torch.nn.Module,
                         batch: dict[str, torch.Tensor],
                         labels: torch.Tensor) -> TrainingOutput:
        """The training forward pass of a micro-batch (`model` may be a DDP wrapper,
        `unwrapped` is the model inside it): by default the logits, then training_loss."""
        logits = model(**batch, **self.model_kwargs).logits
        loss, parts = self.training_loss(unwrapped, batch, logits, labels)
        return TrainingOutput(loss, parts, logits)

    def training_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor],
                      logits: torch.Tensor, labels: torch.Tensor
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to optimise and its named parts to log (none for a single-term loss).
        `model` is the unwrapped model (not a DDP wrapper)."""
        return self.loss(logits, labels), {}

    def prepare_training(self, config: Config, placement: Placement) -> None:  # noqa: B027
        """Load what training needs besides the model (a KD teacher); no-op by default."""

    # ---------------------------------------------------------------- evaluation
    @abstractmethod
    def gather(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        """Per-example predictions (label ids, values or word-level tag ids) from a batch."""

    def evaluation_items(self, model: torch.nn.Module, batch: dict[str, torch.Tensor],
                         labels: torch.Tensor) -> list[tuple[Any, float]]:
        """(prediction, loss) of each example of a batch, without gradients (evaluate())."""
        logits = model(**batch, **self.model_kwargs).logits
        return list(zip(self.gather(logits, {**batch, "labels": labels}),
                        self.example_losses(logits, labels)))

    def example_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
        """Each example's loss (their mean over a batch is `loss` for one-term losses)."""
        return [float(self.loss(logits[i:i + 1], labels[i:i + 1]))
                for i in range(labels.shape[0])]

    @abstractmethod
    def metrics(self, predictions: list[Any], encoded: list[dict[str, Any]],
                labels: list[str] | None) -> dict[str, Any]:
        """Score per-example predictions against the encoded gold labels."""

    @abstractmethod
    def metric_names(self, config: Config, labels: list[str] | None) -> list[str]:
        """The metrics an evaluation of this task reports (registry names)."""

    def prior_loss(self, encoded: list[dict[str, Any]]) -> float | None:
        """The loss of predicting the label prior (None when it has no such meaning): a
        training loss that stays there has learnt nothing from the inputs."""
        return None

    def baseline_metrics(self, encoded: list[dict[str, Any]],
                         labels: list[str] | None) -> dict[str, Any]:
        """Metrics of the trivial predictor (majority class / constant); none by default."""
        return {}

    # ---------------------------------------------------------------- prediction
    @property
    def input_spec(self) -> RecordSpec:
        """The record shape of prediction input files (labels, if any, are ignored)."""
        return self.records

    def prepare_inputs(self, records: list[dict[str, Any]],
                       config: Config) -> list[dict[str, Any]]:
        """Complete raw inputs (`--text`, file rows, request bodies) into task records."""
        return records

    def input_fields(self, records: list[dict[str, Any]]) -> list[str]:
        """The input fields training records carry (saved with the adapter)."""
        return ["text"]

    def accepts_pairs(self, inputs: list[str] | None) -> bool | None:
        """Whether an adapter trained on the input fields `inputs` needs a second text (True),
        refuses one (False) or cannot tell (None: not recorded)."""
        return inputs is not None and "text_pair" in inputs

    def check_inputs(self, records: list[dict[str, Any]], inputs: list[str] | None) -> None:
        """Refuse inputs an adapter trained on `inputs` cannot read: the one input rule of
        predict and serve (loralab.tasks.inputs), with this task's pair rule."""
        check_prediction_inputs(records, self.accepts_pairs(inputs))

    @abstractmethod
    def predict(self, model: torch.nn.Module, tokenizer: Any, records: list[dict[str, Any]],
                config: Config, labels: list[str] | None,
                batch_size: int) -> Iterator[dict[str, Any]]:
        """One rendered result per record, in order."""

    @abstractmethod
    def render(self, output: Any, record: dict, feature: dict[str, Any] | None,
               labels: list[str] | None) -> dict[str, Any]:
        """A user-facing prediction for one example: `output` is that example's logits for
        encoders and its generated text for causal LMs."""

    def answer(self, model: torch.nn.Module, tokenizer: Any, records: list[dict[str, Any]],
               config: Config, *, progress: bool = False,
               desc: str = "generate") -> tuple[list[str], list[Generation]]:
        """(prompts, generated answers: text and how each ended) for generation metrics;
        generative tasks only."""
        raise ConfigError(f"model.task {self.name} does not generate text; data.metrics and "
                          "eval.generate are for model.task causal_lm")

    def gold_text(self, record: dict[str, Any]) -> str | None:
        """The gold answer as text (generation metrics' reference), None when unlabelled."""
        return None

    # ---------------------------------------------------------------- comparing two models
    # (export fidelity and `loralab verify`: the same inputs through a reference and a copy)
    generates: bool = False  # answers are generated text: greedy continuations compared too

    def decisions(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        """What each example of a batch gives its user, in a form two models' outputs can be
        compared by; by default the evaluation predictions (label ids, values, tag ids)."""
        return self.gather(logits, batch)

    def agreement(self, reference: list[Any], candidate: list[Any],
                  labels: list[str] | None) -> dict[str, float]:
        """How far a copy's decisions agree with the reference's. The keys are metrics of
        loralab.metrics.metric_registry (producer "fidelity"): percentages, or differences."""
        same = sum(r == c for r, c in zip(reference, candidate))
        return {"label_agreement": 100.0 * same / max(len(reference), 1)}
