"""Metric suites for generated text: each scores model outputs against gold records.

    compute_generation_metrics(suite, predictions, references, **options) -> {name: float}
    evaluate_generation(...) -> GenerationResult(metrics, details)   with per-example details

Suites (the reference dict each expects, and its options; metrics are in each module's doc):
    json             {"output": gold object}; schema=<JSON Schema dict>
    qa               {"answers": [str, ...]}
    multiple_choice  {"answer": "C", "options": [...], "category": optional}
    code             {"test_list": [...], "test_setup_code": ..., "test_imports": [...]};
                     timeout_s, memory_bytes, max_file_bytes, workers, use_unshare
    text             {"reference": str}; use_stemmer
Fractions are 0..1 except text's `bleu` (sacrebleu's 0..100); counts are floats too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loralab.errors import ConfigError
from loralab.evaluation.generation import (
    code_suite,
    json_suite,
    multiple_choice_suite,
    qa_suite,
    text_suite,
)

SuiteFunction = Callable[..., tuple[dict[str, float], list[dict[str, Any]]]]

METRIC_SUITES: dict[str, SuiteFunction] = {
    "json": json_suite.evaluate,
    "qa": qa_suite.evaluate,
    "multiple_choice": multiple_choice_suite.evaluate,
    "code": code_suite.evaluate,
    "text": text_suite.evaluate,
}


@dataclass
class GenerationResult:
    metrics: dict[str, float]
    details: list[dict[str, Any]] = field(default_factory=list)


def _suite_function(suite: str) -> SuiteFunction:
    try:
        return METRIC_SUITES[suite]
    except KeyError:
        known = ", ".join(sorted(METRIC_SUITES))
        raise ConfigError(f"unknown generation metric suite {suite!r}; known: {known}") from None


def _check_options(suite: str, function: SuiteFunction, options: Mapping[str, Any]) -> None:
    accepted = [name for name, parameter in inspect.signature(function).parameters.items()
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) or "none"
        raise ConfigError(f"generation metric suite {suite!r} has no option(s) "
                          f"{', '.join(unknown)}; its options: {allowed}")


def evaluate_generation(suite: str, predictions: Sequence[str],
                        references: Sequence[Mapping[str, Any]],
                        **options: Any) -> GenerationResult:
    """Score `predictions` against `references` with the named suite, keeping per-example
    details (parsed flags, extracted letters, sandbox outcomes, ...)."""
    function = _suite_function(suite)
    _check_options(suite, function, options)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    metrics, details = function(list(predictions), list(references), **options)
    return GenerationResult(metrics, details)


def compute_generation_metrics(suite: str, predictions: Sequence[str],
                               references: Sequence[Mapping[str, Any]],
                               **options: Any) -> dict[str, float]:
    """A flat {metric: float} of the named suite; unknown suite or option -> ConfigError."""
    return evaluate_generation(suite, predictions, references, **options).metrics


__all__ = ["METRIC_SUITES", "GenerationResult", "compute_generation_metrics",
           "evaluate_generation"]
