"""Gate rules: one `Rule` object, written as text (`--rule`) or as data (`--rules FILE`).

Text grammar (one rule; METRIC is a full results name such as `code.pass@1`):

    METRIC >= NUMBER                  absolute lower bound
    METRIC <= NUMBER                  absolute upper bound
    METRIC >= baseline [- N | + N]    against the stored baseline, absolute change
    METRIC >= baseline * F            against the stored baseline, relative change
    METRIC >= base [+ N | - N | * F]  against the base model in the same results

Rules against `baseline` / `base` take their direction from the metric registry, and the
operator must agree with it: `>=` for higher-is-better metrics, `<=` for lower-is-better ones
(`perplexity <= baseline + 0.5`). A rule that disagrees is refused with the rule it should be,
since `perplexity >= baseline - 0.5` has no single reading. Absolute rules are literal bounds.

Data form (a YAML list, or a mapping with a `rules:` list), MLflow-MetricThreshold-like:

    - metric: code.pass@1
      min: 0.30                          # code.pass@1 >= 0.30
      max_regression: {absolute: 0.02}   # code.pass@1 >= baseline - 0.02
      beat_base_by: 0.05                 # code.pass@1 >= base + 0.05
    - metric: validation.perplexity
      max: 20                            # validation.perplexity <= 20
      max_regression: {relative: 0.05}   # validation.perplexity <= baseline * 1.05
    - "docstring.rougeL >= baseline * 0.98"   # a text rule is an item too

`max_regression`, `min_improvement` (baseline + N: the adapter must improve) and
`beat_base_by` take a number (absolute) or `{absolute: N}` / `{relative: F}` (a fraction of
the reference), both >= 0. One entry with several keys is several rules. Both forms build the
same `Rule`s: `change` is the signed change in the metric's better direction (negative: an
allowed regression, positive: a required improvement).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loralab.config.yaml_loader import read_section, split_section
from loralab.errors import ConfigError
from loralab.metrics.metric_registry import higher_is_better, split_scoped_name

MIN, MAX, BASELINE, BASE = "min", "max", "baseline", "base"
GRAMMAR = ("expected METRIC >= NUMBER, METRIC <= NUMBER, METRIC >= baseline [- N | + N | * F]"
           " or METRIC >= base [+ N | - N | * F] (<= for lower-is-better metrics), e.g. "
           "'code.pass@1 >= baseline - 0.02'")
DATA_KEYS = ("metric", "min", "max", "max_regression", "min_improvement", "beat_base_by")
CHANGE_GRAMMAR = "a number >= 0, {absolute: N} or {relative: F}"

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RULE = re.compile(rf"^\s*(?P<metric>[^\s<>=]+)\s*(?P<op>>=|<=)\s*(?:(?P<number>{_NUMBER})|"
                   rf"(?P<ref>baseline|base)(?:\s*(?P<sign>[-+*])\s*(?P<amount>{_NUMBER}))?)"
                   r"\s*$")


@dataclass(frozen=True)
class Rule:
    metric: str                 # full name as written; aliases resolve against the results
    kind: str                   # min | max | baseline | base
    value: float                # min/max: the bound; baseline/base: the change (see module)
    relative: bool = False      # baseline/base: `value` is a fraction of the reference
    higher: bool | None = None  # baseline/base: the registry's direction of the metric
    source: str = field(default="", compare=False)    # where and how it was written

    @property
    def against(self) -> str | None:
        return self.kind if self.kind in (BASELINE, BASE) else None

    @property
    def text(self) -> str:
        """The canonical text form (what the table and gate.json show)."""
        if self.kind == MIN:
            return f"{self.metric} >= {fmt(self.value)}"
        if self.kind == MAX:
            return f"{self.metric} <= {fmt(self.value)}"
        op, sign = (">=", 1.0) if self.higher else ("<=", -1.0)
        if self.relative:
            return f"{self.metric} {op} {self.kind} * {fmt(1 + sign * self.value)}"
        offset = sign * self.value
        if offset == 0:
            return f"{self.metric} {op} {self.kind}"
        return f"{self.metric} {op} {self.kind} {'+' if offset > 0 else '-'} {fmt(abs(offset))}"


def fmt(value: float) -> str:
    return f"{round(value, 10):g}"


def direction(metric: str, rule: str) -> bool:
    """The registry's direction of a full name's metric; ConfigError naming the rule."""
    name = split_scoped_name(metric)[1]
    higher = higher_is_better(name)
    if higher is None:
        raise ConfigError(f"rule {rule!r}: the metric registry has no direction for {name!r} "
                          "(an unknown name or a count), so it cannot be compared with a "
                          "baseline; use an absolute rule (METRIC >= NUMBER or <= NUMBER)")
    return higher


def parse_rule(text: str) -> Rule:
    """One text rule; ConfigError naming the rule and the grammar when malformed."""
    match = _RULE.match(text)
    if not match:
        raise ConfigError(f"rule {text!r} is malformed: {GRAMMAR}")
    metric, op = match["metric"], match["op"]
    if match["number"] is not None:
        return Rule(metric, MIN if op == ">=" else MAX, float(match["number"]), source=text)
    ref, sign, amount = match["ref"], match["sign"], float(match["amount"] or 0)
    higher = direction(metric, text)
    if higher != (op == ">="):
        word, good = ("higher", ">=") if higher else ("lower", "<=")
        raise ConfigError(f"rule {text!r}: {split_scoped_name(metric)[1]} is {word}-is-better "
                          f"(metric registry), so a rule against the {ref} is written with "
                          f"{good}, e.g. '{metric} {good} {mirrored(ref, sign, amount)}'")
    s = 1.0 if higher else -1.0
    if sign == "*":
        if amount <= 0:
            raise ConfigError(f"rule {text!r}: the factor must be > 0")
        return Rule(metric, ref, clean(s * (amount - 1)), True, higher, text)
    offset = -amount if sign == "-" else amount
    return Rule(metric, ref, clean(s * offset), False, higher, text)


def mirrored(ref: str, sign: str | None, amount: float) -> str:
    """The reference side of a rule with the other operator: - 0.02 <-> + 0.02, * 0.98 ->
    * 1.02 (the example a refused rule's message gives)."""
    if sign == "*":
        return f"{ref} * {fmt(2 - amount) if amount < 2 else fmt(1 / amount)}"
    if not sign or amount == 0:
        return ref
    return f"{ref} {'+' if sign == '-' else '-'} {fmt(amount)}"


def clean(value: float) -> float:
    return round(value, 12) + 0.0   # 0.98 - 1 -> -0.02, and no -0.0


def parse_change(value: Any, where: str) -> tuple[float, bool]:
    """A data-form change: a number (absolute) or {absolute: N} / {relative: F}."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("absolute",
                                                                            "relative"):
        (key, amount), = value.items()
        relative = key == "relative"
    else:
        amount, relative = value, False
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
        raise ConfigError(f"{where}: expected {CHANGE_GRAMMAR}, got {value!r}")
    return float(amount), relative


def rules_from_entry(entry: Any, where: str) -> list[Rule]:
    """The rules of one data-form item (a text rule or a mapping)."""
    if isinstance(entry, str):
        try:
            return [parse_rule(entry)]
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a rule text or a mapping with keys "
                          f"{', '.join(DATA_KEYS)}, got {entry!r}")
    unknown = [k for k in entry if k not in DATA_KEYS]
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; a rule has "
                          f"{', '.join(DATA_KEYS)}")
    metric = entry.get("metric")
    if not isinstance(metric, str) or not metric.strip() or re.search(r"[\s<>=]", metric):
        raise ConfigError(f"{where}.metric: expected a full metric name such as "
                          f"'code.pass@1', got {metric!r}")
    if len(entry) == 1:
        raise ConfigError(f"{where}: {metric!r} has no criterion; give one of "
                          f"{', '.join(DATA_KEYS[1:])}")
    rules = []
    for key in DATA_KEYS[1:]:
        if key not in entry:
            continue
        source = f"{where}.{key}"
        if key in (MIN, MAX):
            bound = entry[key]
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise ConfigError(f"{source}: expected a number, got {bound!r}")
            rules.append(Rule(metric, key, float(bound), source=source))
            continue
        amount, relative = parse_change(entry[key], source)
        higher = direction(metric, source)
        change = amount if key != "max_regression" else -amount
        ref = BASE if key == "beat_base_by" else BASELINE
        rules.append(Rule(metric, ref, clean(change), relative, higher, source))
    return rules


def rules_from_data(data: Any, where: str) -> list[Rule]:
    items = data.get("rules") if isinstance(data, dict) and set(data) == {"rules"} else data
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: expected a non-empty list of rules (or a mapping with a "
                          "`rules:` list)")
    return [rule for i, item in enumerate(items)
            for rule in rules_from_entry(item, f"{where}: rules[{i}]")]


def rules_source(spec: str | Path) -> tuple[Path, str | None]:
    """(file, key) of a rules argument: `params.yaml:gate` is a section of an existing file,
    anything else (a key of None) a rules file of its own."""
    file, key = split_section(spec)
    if key is not None and file.is_file():
        return file, key
    return Path(spec), None


def load_rules_file(path: str | Path) -> list[Rule]:
    """Rules of a YAML file, or of a section of one: `params.yaml:gate.rules` (DVC's
    `file:key` form) is the list (or `rules:` mapping) under that key."""
    file, key = rules_source(path)
    if key is not None:
        return rules_from_data(read_section(path)[0], str(path))
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"rules file {path} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"rules file {path} is not valid YAML: "
                          f"{str(exc).splitlines()[0]}") from None
    return rules_from_data(data, str(path))
