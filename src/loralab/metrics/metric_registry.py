"""The one registry of metrics: every name loralab writes, its direction and its display name.

Best-checkpoint selection, `loralab compare`, the results index, the base-vs-adapter report and
the gate all ask this module whether a metric is better higher or lower; none keeps its own
list. Names are unambiguous across tasks (binary vs macro F1, entity F1, QA token F1, ...);
a few short aliases that configs use (`f1`, `precision`, `recall`) resolve to the name the
results actually carry.

    metric_info("perplexity").higher_is_better   -> False
    resolve_metric("f1", ["accuracy", "f1_binary", "mcc"])  -> "f1_binary"
    is_better(0.8, 0.7, "f1_binary")             -> True

Results files hold metrics under scopes (`validation.f1_binary`, `base.code.pass@1`): the
metric is what follows the last dot (`split_scoped_name`), since no metric name holds one.

    resolve_scoped_metric("validation.f1", ["validation.f1_binary"])  -> "validation.f1_binary"
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from loralab.errors import ConfigError

SEQ, REG, TOK, LM = ("sequence_classification", "regression", "token_classification",
                     "causal_lm")
FIDELITY = "fidelity"


@dataclass(frozen=True)
class MetricInfo:
    name: str
    display: str
    higher_is_better: bool | None   # None: a count or a size, not a score
    producers: tuple[str, ...]      # task names, and `suite:<name>` for generation suites
    description: str = ""

    @property
    def is_score(self) -> bool:
        return self.higher_is_better is not None


def _m(name: str, display: str, higher: bool | None, *producers: str,
       description: str = "") -> MetricInfo:
    return MetricInfo(name, display, higher, producers, description)


_METRICS = (
    # sequence classification
    _m("accuracy", "accuracy", True, SEQ),
    _m("f1_binary", "F1 (positive class)", True, SEQ,
       description="F1 of label id 1, for two-label tasks"),
    _m("f1_macro", "macro F1", True, SEQ, description="unweighted mean of per-label F1"),
    _m("f1_micro", "micro F1", True, SEQ),
    _m("mcc", "MCC", True, SEQ, description="Matthews correlation coefficient"),
    # regression
    _m("pearson", "Pearson r", True, REG),
    _m("spearman", "Spearman rho", True, REG),
    _m("mse", "MSE", False, REG),
    # token classification (seqeval, conlleval mode)
    _m("entity_f1", "entity F1", True, TOK),
    _m("entity_precision", "entity precision", True, TOK),
    _m("entity_recall", "entity recall", True, TOK),
    _m("token_accuracy", "token accuracy", True, TOK),
    _m("entity_f1_per_type", "entity F1 per type (a mapping)", None, TOK),
    # every task's evaluation loss; causal LMs' response-token perplexity
    _m("loss", "loss", False, SEQ, REG, TOK, LM),
    _m("perplexity", "perplexity", False, LM),
    _m("response_tokens", "response tokens", None, LM),
    _m("generated", "generated answers", None, LM),
    _m("truncated", "answers cut at max_new_tokens", None, LM,
       description="with eval.constrain: cut before the grammar's document was complete"),
    # generation suites (data.metrics)
    _m("valid_json", "valid JSON", True, "suite:json"),
    _m("schema_compliance", "schema compliance", True, "suite:json"),
    _m("intent_accuracy", "intent accuracy", True, "suite:json"),
    _m("json_entity_f1", "JSON entity F1", True, "suite:json",
       description="field-level F1 of the extracted entities"),
    _m("json_entity_precision", "JSON entity precision", True, "suite:json"),
    _m("json_entity_recall", "JSON entity recall", True, "suite:json"),
    _m("exact_match", "exact match", True, "suite:qa"),
    _m("qa_f1", "QA token F1", True, "suite:qa", description="SQuAD token-overlap F1"),
    _m("mc_accuracy", "multiple-choice accuracy", True, "suite:multiple_choice"),
    _m("mc_extraction_rate", "answer letter found", True, "suite:multiple_choice"),
    _m("pass@1", "pass@1", True, "suite:code"),
    _m("code_failures", "failed tests", False, "suite:code"),
    _m("code_errors", "errors", False, "suite:code"),
    _m("code_timeouts", "timeouts", False, "suite:code"),
    _m("bleu", "BLEU", True, "suite:text"),
    _m("rougeL", "ROUGE-L", True, "suite:text"),
    # LLM judge (evaluation.judge): mean 1-10 score, answers the judge gave no score for
    _m("judge_score", "LLM judge score (1-10)", True, "suite:judge"),
    _m("judge_failures", "answers the judge did not score", False, "suite:judge"),
    # export fidelity (`loralab export` / `verify`): a copy's outputs against the reference's
    _m("max_abs_diff", "max |Δ logit|", False, FIDELITY,
       description="largest absolute logit difference over the compared positions"),
    _m("mean_abs_diff", "mean |Δ logit|", False, FIDELITY),
    _m("label_agreement", "label agreement", True, FIDELITY,
       description="examples (words for token tasks) whose predicted label is the same"),
    _m("max_value_diff", "max |Δ value|", False, FIDELITY,
       description="largest difference of a regression output"),
    _m("entity_agreement", "entity agreement", True, FIDELITY,
       description="entity-level F1 of the copy's entities against the reference's"),
    _m("next_token_agreement", "next-token agreement", True, FIDELITY,
       description="positions whose most likely next token is the same"),
    _m("generation_match", "greedy generations equal", True, FIDELITY,
       description="prompts whose greedy continuation is the same text"),
)
METRICS: dict[str, MetricInfo] = {m.name: m for m in _METRICS}

# short names configs use -> the specific names, in the order they are looked for
ALIASES: dict[str, tuple[str, ...]] = {
    "f1": ("f1_binary", "f1_macro", "entity_f1", "qa_f1", "json_entity_f1"),
    "precision": ("entity_precision", "json_entity_precision"),
    "recall": ("entity_recall", "json_entity_recall"),
}


def metric_info(name: str) -> MetricInfo:
    """The registry entry of `name`; a per-group metric `family/group` (e.g.
    `mc_accuracy/physics`) shares its family's entry. Unknown names raise ConfigError."""
    name = name.removeprefix("eval_")
    family = name.split("/", 1)[0]
    if family in METRICS:
        info = METRICS[family]
        if family == name:
            return info
        return MetricInfo(name, f"{info.display} ({name.split('/', 1)[1]})",
                          info.higher_is_better, info.producers, info.description)
    if family in ALIASES:
        first = METRICS[ALIASES[family][0]]
        return MetricInfo(name, name, first.higher_is_better, first.producers,
                          f"alias of {' / '.join(ALIASES[family])}")
    raise ConfigError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")


def greater_is_better(name: str) -> bool:
    """True when a larger value of `name` is better (ConfigError for counts and unknowns)."""
    info = metric_info(name)
    if info.higher_is_better is None:
        raise ConfigError(f"{name!r} is a count, not a score: it cannot rank results")
    return info.higher_is_better


def higher_is_better(name: str) -> bool | None:
    """The direction of a score; None for counts and names the registry does not know."""
    try:
        return metric_info(name).higher_is_better
    except ConfigError:
        return None


def is_better(value: float, other: float, name: str) -> bool:
    """`value` is strictly better than `other` for metric `name`."""
    return value > other if greater_is_better(name) else value < other


def display_name(name: str) -> str:
    try:
        return metric_info(name).display
    except ConfigError:
        return name


def find_metric(name: str, available: Iterable[str]) -> str | None:
    """The name in `available` that `name` asks for: itself, or the first of its alias's
    specific names that is there; None when there is none."""
    present = set(available)
    wanted = name.removeprefix("eval_")
    if wanted in present:
        return wanted
    return next((c for c in ALIASES.get(wanted, ()) if c in present), None)


def resolve_metric(name: str, available: Iterable[str], *, key: str = "metric") -> str:
    """Like `find_metric`, but a ConfigError naming `key` and listing the scores in
    `available` when `name` is not there."""
    present = list(dict.fromkeys(available))
    found = find_metric(name, present)
    if found is not None:
        return found
    scores = [m for m in present if _is_score(m)] or present
    raise ConfigError(f"{key}: {name!r} is not a metric of these results; choose one of: "
                      f"{', '.join(scores) or 'none'}")


def split_scoped_name(name: str) -> tuple[str, str]:
    """(scope, metric) of a full results name: `base.code.pass@1` -> ("base.code", "pass@1"),
    `loss` -> ("", "loss"). The metric follows the last dot; the scope may hold dots."""
    scope, _, metric = name.rpartition(".")
    return scope, metric


def resolve_scoped_metric(name: str, available: Iterable[str], *, key: str = "metric") -> str:
    """The full name in `available` that `name` asks for: itself, or the same scope with the
    metric resolved as `find_metric` does (`validation.f1` -> `validation.f1_binary`).
    ConfigError naming `key` and `name` and listing every name of `available` otherwise."""
    present = list(dict.fromkeys(available))
    if name in present:
        return name
    scope, metric = split_scoped_name(name)
    same_scope = {split_scoped_name(p)[1]: p for p in present if split_scoped_name(p)[0] == scope}
    found = find_metric(metric, same_scope)
    if found is None:
        raise ConfigError(f"{key}: {name!r} is not in these results; they hold: "
                          f"{', '.join(present) or 'no metrics'}")
    return same_scope[found]


def _is_score(name: str) -> bool:
    return higher_is_better(name) is not None


def metrics_of(producer: str) -> list[str]:
    """Every registered metric that a task (or `suite:<name>`) produces."""
    return [m.name for m in _METRICS if producer in m.producers]
