"""The collapse check after the first epoch, one rule in one place (issue 17 item 3).

    stuck_at_prior   is the training loss still the loss of predicting the label prior? Then
                     the model has learned no more than the class frequencies (a run that
                     stays there answers the majority class whatever the input). Printed.
    collapse_reason  is an evaluation no better than the trivial predictor (majority class,
                     constant)? MCC below 0.1 for two classes, accuracy within 0.01 of the
                     majority class's for more, Pearson below 0.1 for regression, entity F1
                     below 0.1 for token classification: the definition of a collapsed run in
                     the recipe study (benchmarks/recipe_robustness.py).

A run has collapsed after epoch 1 when both hold; training.on_collapse says what it does then
(loralab.training.collapse).
"""

from __future__ import annotations

import math
from typing import Any

# the second half of epoch 1's losses within 3 % of the prior's loss counts as "still there"
STUCK_FRACTION = 0.97
COLLAPSE_SCORE = 0.1       # MCC, Pearson, entity F1 below this: no better than the prior
COLLAPSE_ACCURACY = 0.01   # many classes: accuracy within this of the majority class's


def stuck_at_prior(prior: float | None, losses: list[float], learning_rate: float) -> str | None:
    """The warning to print, or None. `prior`: the task's loss of predicting the label prior
    (None where the task has none); `losses`: epoch 1's micro-batch losses."""
    tail = losses[len(losses) // 2:]  # the second half: past the warm-up
    if prior is None or not tail:
        return None
    mean = sum(tail) / len(tail)
    if not math.isfinite(mean) or mean < STUCK_FRACTION * prior:  # NaN is divergence's
        return None
    return (f"warning: after epoch 1 the training loss ({mean:.4f}) is still the label "
            f"prior's ({prior:.4f}): the model has learned no more than the class frequencies "
            f"yet; if it stays there it answers the majority class whatever the input: try a "
            f"lower training.learning_rate (e.g. {learning_rate / 2:g}) or more "
            f"training.warmup (e.g. 0.1)")


def collapse_score(metrics: dict[str, Any],
                   trivial: dict[str, Any]) -> tuple[str, float, float] | None:
    """(metric, value, the bound it must beat) of the collapse rule for these metrics; None
    where the rule has no metric (a causal LM's)."""
    if "pearson" in metrics:
        return "pearson", float(metrics["pearson"]), COLLAPSE_SCORE
    if "entity_f1" in metrics:
        return "entity_f1", float(metrics["entity_f1"]), COLLAPSE_SCORE
    if "f1_binary" in metrics and "mcc" in metrics:
        return "mcc", float(metrics["mcc"]), COLLAPSE_SCORE
    if "accuracy" in metrics and "accuracy" in trivial:
        return "accuracy", float(metrics["accuracy"]), trivial["accuracy"] + COLLAPSE_ACCURACY
    return None


def collapse_reason(metrics: dict[str, Any], trivial: dict[str, Any]) -> str | None:
    """Why these evaluation metrics count as collapsed (one phrase), or None. A NaN score
    (constant predictions) counts as collapsed; many classes must beat the bound strictly."""
    found = collapse_score(metrics, trivial)
    if found is None:
        return None
    name, value, bound = found
    beats = value > bound if name == "accuracy" else value >= bound
    if beats:
        return None
    if name == "accuracy":
        return (f"validation accuracy {value:.4f} is within {COLLAPSE_ACCURACY:g} of the "
                f"majority class's {trivial['accuracy']:.4f}")
    return f"validation {name} {value:.4f} is below {bound:g}"
