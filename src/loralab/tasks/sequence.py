"""Sequence-level tasks: classification (binary / multi-class) and regression, single text or
text pair. Both share encoding; they differ in head size, loss, metrics and rendering."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DataCollatorWithPadding

from loralab.config import Config
from loralab.data.spec import RecordSpec
from loralab.errors import DataError
from loralab.metrics.scores import classification_metrics, regression_metrics
from loralab.tasks.encoder import EncoderTask
from loralab.tasks.labels import infer_label_names, label_entropy, label_id, row_error


def encode_texts(records: list[dict], tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """Tokenise text (and text_pair when every record has one) without padding."""
    texts = [r["text"] for r in records]
    pairs = [r.get("text_pair") for r in records]
    has_pairs = any(p is not None for p in pairs)
    if has_pairs:
        missing = next((r for r in records if r.get("text_pair") is None), None)
        if missing is not None:
            raise row_error(missing, "text_pair", "empty second text in a text-pair dataset")
    enc = tokenizer(texts, pairs if has_pairs else None, truncation=True,
                    max_length=max_length)
    keys = list(enc.keys())
    return [{k: enc[k][i] for k in keys} for i in range(len(records))]


class TextTask(EncoderTask):
    """Single texts or text pairs."""

    def input_fields(self, records):
        pairs = any(r.get("text_pair") is not None for r in records)
        return ["text", "text_pair"] if pairs else ["text"]

    def accepts_pairs(self, inputs):
        return None if inputs is None else "text_pair" in inputs


class SequenceClassificationTask(TextTask):
    name = "sequence_classification"
    default_metric = "f1"  # f1_binary for two labels, f1_macro for more (registry alias)
    auto_model_class = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"
    records = RecordSpec(name, "sentences")

    def label_names(self, train: list[dict], config: Config) -> list[str]:
        return infer_label_names(train, config.model.labels, config.model.num_labels)

    def encode(self, records, tokenizer, labels, max_length):
        features = encode_texts(records, tokenizer, max_length)
        for feature, record in zip(features, records):
            if record.get("label") is not None:
                feature["labels"] = label_id(record, labels)
        return features

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def loss(self, logits, labels):
        return F.cross_entropy(logits.float(), labels)

    def example_losses(self, logits, labels):
        return F.cross_entropy(logits.float(), labels, reduction="none").tolist()

    def correct(self, logits, labels, tolerance):
        return logits.argmax(-1) == labels

    def head_rows_match(self, rows):
        return rows is not None and rows > 1

    def prior_loss(self, encoded):
        return label_entropy([f["labels"] for f in encoded if "labels" in f])

    def metric_names(self, config, labels):
        f1 = ["f1_binary"] if labels is not None and len(labels) == 2 else ["f1_macro",
                                                                             "f1_micro"]
        return ["accuracy", "mcc", *f1, "loss"]

    def gather(self, logits, batch):
        return logits.argmax(-1).tolist()

    def metrics(self, predictions, encoded, labels):
        gold = [f["labels"] for f in encoded]
        return classification_metrics(predictions, gold, len(labels))

    def baseline_metrics(self, encoded, labels):
        gold = [f["labels"] for f in encoded]
        majority = Counter(gold).most_common(1)[0][0]
        return self.metrics([majority] * len(gold), encoded, labels)

    def render(self, logits, record, feature, labels):
        probs = torch.softmax(logits.float(), -1)
        best = int(probs.argmax())
        return {"label": labels[best], "confidence": round(float(probs[best]), 6),
                "scores": {name: round(float(p), 6) for name, p in zip(labels, probs)}}


class RegressionTask(TextTask):
    name = "regression"
    default_metric = "pearson"
    auto_model_class = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"
    records = RecordSpec(name, "sentences", numeric_labels=True)

    def head_kwargs(self, labels):
        return {"num_labels": 1, "problem_type": "regression"}

    def head_rows_match(self, rows):
        return rows is None or rows == 1  # a one-output head (or none saved: plain PEFT)

    def prior_loss(self, encoded):
        values = [f["labels"] for f in encoded if "labels" in f]
        return float(np.var(values)) if values else None  # MSE of predicting the mean

    def metric_names(self, config, labels):
        return ["pearson", "spearman", "mse", "loss"]

    def label_names(self, train, config):
        return None

    def encode(self, records, tokenizer, labels, max_length):
        features = encode_texts(records, tokenizer, max_length)
        for feature, record in zip(features, records):
            value = record.get("label")
            if value is None:
                continue
            try:
                feature["labels"] = float(value)
            except (TypeError, ValueError):
                raise row_error(record, "label", f"expected a number, got {value!r}") from None
            if not np.isfinite(feature["labels"]):
                raise row_error(record, "label", f"expected a finite number, got {value!r}")
        return features

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def loss(self, logits, labels):
        return F.mse_loss(logits.float().view(-1), labels.float().view(-1))

    def example_losses(self, logits, labels):
        return (logits.float().view(-1) - labels.float().view(-1)).pow(2).tolist()

    def correct(self, logits, labels, tolerance):
        return (logits.float().view(-1) - labels.float().view(-1)).abs() <= tolerance

    def gather(self, logits, batch):
        return logits.float().view(-1).tolist()

    def metrics(self, predictions, encoded, labels):
        return regression_metrics(predictions, [f["labels"] for f in encoded])

    def baseline_metrics(self, encoded, labels):
        gold = [f["labels"] for f in encoded]
        return self.metrics([float(np.mean(gold))] * len(gold), encoded, labels)

    def render(self, logits, record, feature, labels):
        return {"value": round(float(logits.float().view(-1)[0]), 6)}

    def agreement(self, reference, candidate, labels):
        gaps = [abs(r - c) for r, c in zip(reference, candidate)]
        return {"max_value_diff": max(gaps, default=0.0)}


__all__ = ["SequenceClassificationTask", "RegressionTask", "DataError"]
