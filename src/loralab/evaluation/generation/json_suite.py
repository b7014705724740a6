"""JSON-extraction metrics: is the output JSON, does it follow the schema, are intent and
entities right.

Reference per example: {"output": <gold object {"intent": ..., "entities": {...}}>}.
Option: `schema` (a JSON Schema dict); without it `schema_compliance` is not reported.

Metrics (fractions 0..1 unless said otherwise):
    n                   number of examples (count)
    valid_json          outputs from which a JSON object could be parsed
    schema_compliance   outputs whose object validates against `schema` (unparsed = non-compliant)
    intent_accuracy     outputs whose "intent" equals the gold intent exactly
    json_entity_precision, json_entity_recall, json_entity_f1
                        micro-averaged over (field, normalised value) pairs of "entities";
                        strings compare casefolded with whitespace collapsed, numbers
                        numerically (40.5 == 40.50), but the string "3" is not the number 3;
                        nested objects become dotted fields ("amount.currency"), list items
                        count one pair each, null values count as absent.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jsonschema

from loralab.errors import ConfigError

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text`, or None.

    Tries, in order: the whole text; the inside of a ```json (or bare ```) fence, closed or
    not; each balanced top-level {...} in turn, so prose before and after the object is
    ignored. A top-level array or scalar does not count, and neither does an object nested
    in an unclosed one (a truncated output is not valid JSON).
    """
    stripped = text.strip()
    candidates = [stripped] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return _first_embedded_object(text)


def _top_level_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each balanced {...} at depth 0, braces inside JSON strings ignored."""
    depth, start, in_string, escaped = 0, 0, False, False
    for index, char in enumerate(text):
        if depth == 0:
            if char == "{":
                depth, start = 1, index
        elif in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{}":
            depth += 1 if char == "{" else -1
            if depth == 0:
                yield start, index + 1


def _first_embedded_object(text: str) -> dict[str, Any] | None:
    for start, end in _top_level_spans(text):
        try:
            value = json.loads(text[start:end])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def normalise_value(value: Any) -> tuple[str, Any]:
    """A comparable, hashable key: strings casefolded with whitespace collapsed, numbers as
    floats (so 40.5 == 40.50 and 3 == 3.0). The type tag keeps "3" != 3 and True != 1."""
    if isinstance(value, str):
        return "str", " ".join(value.casefold().split())
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, (int, float)):
        return "number", float(value)
    return "json", json.dumps(value, sort_keys=True)


def entity_pairs(entities: Any, prefix: str = "") -> Iterator[tuple[str, tuple[str, Any]]]:
    """(field, normalised value) pairs of an entities object; nested objects flatten to a.b."""
    if not isinstance(entities, Mapping):
        return
    for key, value in entities.items():
        field = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from entity_pairs(value, prefix=f"{field}.")
        elif isinstance(value, list):
            yield from ((field, normalise_value(item)) for item in value if item is not None)
        elif value is not None:
            yield field, normalise_value(value)


def _validator(schema: Mapping[str, Any] | None) -> Any:
    if schema is None:
        return None
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"json suite: option 'schema' is not a valid JSON Schema: "
                          f"{exc.message}") from exc
    return cls(schema)


def _score_one(prediction: str, gold: Mapping[str, Any], validator: Any) -> dict[str, Any]:
    parsed = extract_json_object(prediction)
    pred_entities = parsed.get("entities") if parsed is not None else None
    pred_pairs = Counter(entity_pairs(pred_entities))
    gold_pairs = Counter(entity_pairs(gold.get("entities")))
    detail: dict[str, Any] = {
        "valid_json": parsed is not None,
        "intent_correct": parsed is not None and parsed.get("intent") == gold.get("intent"),
        "true_positives": sum((pred_pairs & gold_pairs).values()),
        "predicted_entities": sum(pred_pairs.values()),
        "gold_entities": sum(gold_pairs.values()),
    }
    if validator is not None:
        errors = [] if parsed is None else list(validator.iter_errors(parsed))
        detail["schema_compliant"] = parsed is not None and not errors
        detail["schema_errors"] = [e.message for e in errors[:5]]
    return detail


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _aggregate(details: Sequence[Mapping[str, Any]], with_schema: bool) -> dict[str, float]:
    n = len(details)
    tp = sum(d["true_positives"] for d in details)
    precision = _ratio(tp, sum(d["predicted_entities"] for d in details))
    recall = _ratio(tp, sum(d["gold_entities"] for d in details))
    metrics = {
        "n": float(n),
        "valid_json": _ratio(sum(d["valid_json"] for d in details), n),
        "intent_accuracy": _ratio(sum(d["intent_correct"] for d in details), n),
        "json_entity_precision": precision,
        "json_entity_recall": recall,
        "json_entity_f1": _ratio(2 * precision * recall, precision + recall),
    }
    if with_schema:
        metrics["schema_compliance"] = _ratio(sum(d["schema_compliant"] for d in details), n)
    return metrics


def evaluate(predictions: Sequence[str], references: Sequence[Mapping[str, Any]], *,
             schema: Mapping[str, Any] | None = None
             ) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics, per-example details) for generated JSON against {"output": gold} references."""
    validator = _validator(schema)
    details = [_score_one(pred, ref["output"], validator)
               for pred, ref in zip(predictions, references, strict=True)]
    return _aggregate(details, with_schema=validator is not None), details
