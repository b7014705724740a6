"""The check after the first epoch: is the training loss still the loss of predicting the
label prior? Then the model has learned no more than the class frequencies (a run that stays
there answers the majority class whatever the input)."""

from __future__ import annotations

import math

# the second half of epoch 1's losses within 3 % of the prior's loss counts as "still there"
STUCK_FRACTION = 0.97


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
