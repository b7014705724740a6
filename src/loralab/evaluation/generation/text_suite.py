"""Free-text metrics: corpus BLEU (sacrebleu) and ROUGE-L (rouge-score).

Reference per example: {"reference": str}.

Metrics:
    n        number of examples (count)
    bleu     sacrebleu's corpus BLEU with its defaults (13a tokenisation, exponential
             smoothing), on sacrebleu's 0..100 scale, NOT 0..1 like the other metrics
    rougeL   mean ROUGE-L F-measure per example, 0..1. rouge-score's tokenizer lower-cases and
             keeps only a-z and 0-9, so text in other scripts scores 0; `use_stemmer` (default
             False) applies the Porter stemmer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# sacrebleu and rouge_score are imported where used: rouge_score pulls in nltk and SciPy
# (about 1.5 s), which importing the suite registry should not cost.


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu corpus BLEU, 0..100, one reference per prediction."""
    import sacrebleu

    if not predictions:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def evaluate(predictions: Sequence[str], references: Sequence[Mapping[str, Any]], *,
             use_stemmer: bool = False) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics, per-example ROUGE-L F1) of generated texts against {"reference": str}."""
    from rouge_score import rouge_scorer

    gold = [str(reference["reference"]) for reference in references]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    details = [{"rougeL": scorer.score(target, prediction)["rougeL"].fmeasure}
               for prediction, target in zip(predictions, gold, strict=True)]
    n = len(details)
    metrics = {
        "n": float(n),
        "bleu": corpus_bleu(predictions, gold),
        "rougeL": sum(d["rougeL"] for d in details) / n if n else 0.0,
    }
    return metrics, details
