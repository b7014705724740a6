"""Score functions, each a thin wrapper over scikit-learn, SciPy or seqeval.

The names in the returned dicts are the registry's (loralab.metrics.metric_registry): unambiguous
across tasks, e.g. `f1_binary` vs `f1_macro` vs `entity_f1`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from seqeval.metrics import classification_report as seqeval_report
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics import precision_score as seqeval_precision
from seqeval.metrics import recall_score as seqeval_recall
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def classification_metrics(predictions: Sequence[int], labels: Sequence[int],
                           num_labels: int) -> dict[str, float]:
    """Accuracy and MCC; F1 of the positive class (label id 1) for two labels, else macro and
    micro F1."""
    y_pred, y_true = np.asarray(predictions), np.asarray(labels)
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "mcc": float(matthews_corrcoef(y_true, y_pred)),
    }
    if num_labels == 2:
        out["f1_binary"] = float(f1_score(y_true, y_pred, average="binary", pos_label=1,
                                          zero_division=0))
    else:
        out["f1_macro"] = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
        out["f1_micro"] = float(f1_score(y_true, y_pred, average="micro", zero_division=0))
    return out


def regression_metrics(predictions: Sequence[float], labels: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation, MSE. A constant prediction has correlation 0."""
    y_pred = np.asarray(predictions, dtype=np.float64)
    y_true = np.asarray(labels, dtype=np.float64)
    constant = np.ptp(y_pred) == 0 or np.ptp(y_true) == 0
    pearson = 0.0 if constant else float(stats.pearsonr(y_pred, y_true).statistic)
    spearman = 0.0 if constant else float(stats.spearmanr(y_pred, y_true).statistic)
    return {"pearson": pearson, "spearman": spearman,
            "mse": float(np.mean((y_pred - y_true) ** 2))}


def entity_metrics(predicted_tags: list[list[str]], gold_tags: list[list[str]]) -> dict:
    """Entity-level precision / recall / F1, token accuracy, and F1 per entity type.

    seqeval's default (conlleval-compatible) mode, the one published CoNLL scores use: a
    predicted entity that starts with I- still counts as an entity.
    """
    kwargs = {"zero_division": 0}
    flat_true = [t for seq in gold_tags for t in seq]
    flat_pred = [t for seq in predicted_tags for t in seq]
    report = seqeval_report(gold_tags, predicted_tags, output_dict=True, **kwargs)
    per_type = {name: round(float(row["f1-score"]), 6) for name, row in report.items()
                if not name.endswith(" avg")}
    return {
        "entity_precision": float(seqeval_precision(gold_tags, predicted_tags, **kwargs)),
        "entity_recall": float(seqeval_recall(gold_tags, predicted_tags, **kwargs)),
        "entity_f1": float(seqeval_f1(gold_tags, predicted_tags, **kwargs)),
        "token_accuracy": float(accuracy_score(flat_true, flat_pred)) if flat_true else 0.0,
        "entity_f1_per_type": per_type,
    }
