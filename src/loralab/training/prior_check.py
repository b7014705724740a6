"""The collapse check after the first epoch, one rule in one place (issue 17 item 3).

    stuck_at_prior   is the training loss still the loss of predicting the label prior? Then
                     the model has learned no more than the class frequencies (a run that
                     stays there answers the majority class whatever the input). Printed.
    collapse_reason  does an evaluation give one answer whatever the input? MCC exactly 0
                     (classification: every prediction one class, sklearn's MCC of constant
                     predictions), Pearson exactly 0 (regression: a constant output, see
                     loralab.metrics.scores), entity F1 exactly 0 (tokens: not one entity
                     found right). Stricter than the recipe study's "collapsed run" (MCC below
                     0.1 after training, benchmarks/recipe_robustness.py) on purpose: after one
                     epoch a score between 0 and 0.1 is often a slow start that goes on to
                     learn (tests/test_training.py's tiny runs: MCC 0.097 after epoch 1).

    overshoot        is that loss not only at the prior but above it, by more than 5 %? The
                     model does worse than answering the class frequencies: its steps
                     overshoot, which a lower learning rate cures. A loss at the prior is a
                     slow start (measured: MRPC at lr 1e-3, +0.7 % and -1 %; the tiny test
                     model at 5e-3, +3.7 %, learns), which a lower rate would only slow.

A run has collapsed after epoch 1 when it overshoots and gives one answer (`collapsed`);
training.on_collapse says what it does then (loralab.training.collapse).
"""

from __future__ import annotations

import math
from typing import Any

# the second half of epoch 1's losses within 3 % of the prior's loss counts as "still there"
STUCK_FRACTION = 0.97
OVERSHOOT = 1.05   # ... and more than 5 % above it as overshooting


def tail_mean(losses: list[float]) -> float | None:
    """The mean of the second half of epoch 1's losses (past the warm-up)."""
    tail = losses[len(losses) // 2:]
    return sum(tail) / len(tail) if tail else None


def stuck_at_prior(prior: float | None, losses: list[float], learning_rate: float) -> str | None:
    """The warning to print, or None. `prior`: the task's loss of predicting the label prior
    (None where the task has none); `losses`: epoch 1's micro-batch losses."""
    mean = tail_mean(losses)
    if prior is None or mean is None:
        return None
    if not math.isfinite(mean) or mean < STUCK_FRACTION * prior:  # NaN is divergence's
        return None
    return (f"warning: after epoch 1 the training loss ({mean:.4f}) is still the label "
            f"prior's ({prior:.4f}): the model has learned no more than the class frequencies "
            f"yet; if it stays there it answers the majority class whatever the input: try a "
            f"lower training.learning_rate (e.g. {learning_rate / 2:g}) or more "
            f"training.warmup (e.g. 0.1)")


# the score that is exactly 0 when the model gives one answer whatever the input
ONE_ANSWER = ("pearson", "entity_f1", "mcc")


def collapse_reason(metrics: dict[str, Any]) -> str | None:
    """Why these evaluation metrics show one answer whatever the input (one phrase), or None
    (also where the task has none of these scores: a causal LM's)."""
    name = next((m for m in ONE_ANSWER if m in metrics), None)
    if name is None:
        return None
    value = float(metrics[name])
    if not math.isnan(value) and value != 0.0:   # NaN (constant output) counts as collapsed
        return None
    what = {"pearson": "a constant output", "entity_f1": "no entity found right",
            "mcc": "every prediction one class"}[name]
    return f"validation {name} {value:g}: {what}"


def overshoot(prior: float | None, losses: list[float]) -> str | None:
    """Epoch 1's training loss is more than 5 % above the label prior's: the phrase, or None."""
    mean = tail_mean(losses)
    if prior is None or mean is None or not math.isfinite(mean) or mean <= OVERSHOOT * prior:
        return None
    return f"training loss {mean:.4f} above the label prior's {prior:.4f}"


def collapsed(prior: float | None, losses: list[float],
              metrics: dict[str, Any] | None) -> str | None:
    """The rule: why epoch 1 collapsed, or None. `metrics`: the epoch-1 evaluation (needed
    only when the loss overshoots)."""
    high = overshoot(prior, losses)
    one_answer = collapse_reason(metrics) if high and metrics is not None else None
    return f"{high}; {one_answer}" if one_answer else None
