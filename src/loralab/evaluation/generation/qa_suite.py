"""Extractive/generative QA metrics: SQuAD exact match and token F1.

Reference per example: {"answers": [str, ...]}. Each prediction scores the best over its gold
answers. The functions follow the official SQuAD v2.0 evaluation script: lowercase, strip
punctuation, drop the articles a/an/the, collapse whitespace; gold answers that normalise to ""
are dropped and, if none is left, the only gold answer is "" (unanswerable). When either side
normalises to nothing, F1 is 1 if both do and 0 otherwise (the v1.1 script gave 0 in both cases).

Metrics (fractions 0..1, not the script's 0..100):
    n             number of examples (count)
    exact_match   mean of the best exact match per example
    qa_f1         mean of the best token F1 per example
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official SQuAD)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def get_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def compute_exact(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def compute_f1(gold: str, prediction: str) -> float:
    gold_tokens, pred_tokens = get_tokens(gold), get_tokens(prediction)
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    num_same = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers: Sequence[str] | str) -> list[str]:
    """The official rule: answers that normalise to "" are dropped; none left means [""].

    A single string is taken as a one-answer list.
    """
    if isinstance(answers, str):
        answers = [answers]
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def evaluate(predictions: Sequence[str], references: Sequence[Mapping[str, Any]]
             ) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics, per-example details) of predictions against {"answers": [...]} references."""
    details = []
    for prediction, reference in zip(predictions, references, strict=True):
        golds = gold_answers(reference["answers"])
        details.append({
            "exact_match": max(compute_exact(g, prediction) for g in golds),
            "f1": max(compute_f1(g, prediction) for g in golds),
        })
    n = len(details)
    metrics = {
        "n": float(n),
        "exact_match": sum(d["exact_match"] for d in details) / n if n else 0.0,
        "qa_f1": sum(d["f1"] for d in details) / n if n else 0.0,
    }
    return metrics, details
