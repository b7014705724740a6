"""Check gate rules against the results, the stored baseline and the base model's numbers.

Each rule becomes an `Outcome`: the value, the reference it was compared with, the bound it
needed (`needed`), the margin (how far on the passing side; negative: by how much it failed)
and pass / fail / skipped. A rule against the baseline is skipped when no baseline is stored
yet; every other rule decides. A name missing from the results or the baseline is a user
error that lists the names present. Bounds are met within 1e-9 (relative): 0.30 meets
`baseline - 0.03` for a baseline of 0.33 although 0.33 - 0.03 is 0.30000000000000004.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loralab.errors import ConfigError
from loralab.evaluation.gate.results import Results
from loralab.evaluation.gate.rules import BASE, BASELINE, MAX, MIN, Rule
from loralab.metrics.metric_registry import resolve_scoped_metric

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
TOLERANCE = 1e-9


@dataclass
class Outcome:
    rule: Rule
    metric: str                     # the full name in the results (an alias resolved)
    value: float
    status: str
    reference: float | None = None  # the baseline's or the base model's value
    needed: float | None = None
    margin: float | None = None
    note: str = ""

    def to_json(self) -> dict:
        rule = self.rule
        return {"rule": rule.text, "written": rule.source, "metric": rule.metric,
                "resolved": self.metric, "kind": rule.kind, "relative": rule.relative,
                "direction": None if rule.higher is None else
                ("higher" if rule.higher else "lower"),
                "value": self.value, "against": rule.against, "reference": self.reference,
                "needed": tidy(self.needed), "margin": tidy(self.margin), "result": self.status,
                "note": self.note}


def check_rules(rules: list[Rule], results: Results,
                baseline: Results | None) -> list[Outcome]:
    """Every rule's outcome. UserError (exit 2) for a metric missing from either file."""
    return [check_rule(rule, results, baseline) for rule in rules]


def check_rule(rule: Rule, results: Results, baseline: Results | None) -> Outcome:
    name = resolve_scoped_metric(rule.metric, results.metrics,
                                 key=f"rule {rule.text!r} (results {results.path})")
    value = results.metrics[name]
    outcome = Outcome(rule, name, value, PASS)
    if name != rule.metric:
        outcome.note = f"{rule.metric} is {name}"
    if rule.kind in (MIN, MAX):
        return decide(outcome, rule.value, greater=rule.kind == MIN)
    if rule.kind == BASELINE and baseline is None:
        outcome.status = SKIPPED
        outcome.note = join(outcome.note, "no baseline yet")
        return outcome
    outcome.reference = reference_value(rule, name, results, baseline)
    sign = 1.0 if rule.higher else -1.0
    needed = (outcome.reference * (1 + sign * rule.value) if rule.relative
              else outcome.reference + sign * rule.value)
    return decide(outcome, needed, greater=bool(rule.higher))


def reference_value(rule: Rule, name: str, results: Results, baseline: Results | None) -> float:
    if rule.kind == BASE:
        source, candidates = results, (f"base.{name}", f"base.{rule.metric}")
        where = f"results {results.path}"
        hint = "" if any(k.startswith("base.") for k in results.metrics) else (
            " (no base numbers at all: give an eval folder with baseline_results.json or "
            "a benchmark JSON with a `base` section)")
    else:
        assert rule.kind == BASELINE and baseline is not None
        source, candidates, where, hint = baseline, (name, rule.metric), \
            f"baseline {baseline.path}", ""
    for candidate in candidates:
        try:
            found = resolve_scoped_metric(candidate, source.metrics)
        except ConfigError:
            continue
        return source.metrics[found]
    raise ConfigError(f"rule {rule.text!r}: {candidates[0]!r} is not in the {where}{hint}; "
                      f"it holds: {', '.join(source.metrics)}")


def decide(outcome: Outcome, needed: float, *, greater: bool) -> Outcome:
    outcome.needed = needed
    if math.isnan(outcome.value) or math.isnan(needed):
        outcome.status = FAIL
        outcome.note = join(outcome.note, "not a number")
        return outcome
    outcome.margin = outcome.value - needed if greater else needed - outcome.value
    slack = TOLERANCE * max(1.0, abs(needed))
    outcome.status = PASS if outcome.margin >= -slack else FAIL
    return outcome


def tidy(value: float | None) -> float | None:
    """A computed number without float noise (0.36000000000000004 -> 0.36)."""
    return value if value is None or not math.isfinite(value) else round(value, 12)


def join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def passed(outcomes: list[Outcome]) -> bool:
    return not any(o.status == FAIL for o in outcomes)
