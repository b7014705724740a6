"""JSON Schemas every constrained-decoding test checks outputs against: enums, required
keys, nested objects, numbers, arrays, additionalProperties: false."""

from __future__ import annotations

WORD = {"type": "string", "maxLength": 6}
SCHEMAS = {
    "enum_required_closed": {
        "type": "object", "required": ["intent", "ok"], "additionalProperties": False,
        "properties": {"intent": {"enum": ["book", "cancel", "pay"]}, "note": WORD,
                       "ok": {"type": "boolean"}}},
    "nested_numbers": {
        "type": "object", "required": ["amount", "n"], "additionalProperties": False,
        "properties": {"amount": {"type": "object", "required": ["value", "currency"],
                                  "additionalProperties": False,
                                  "properties": {"value": {"type": "number",
                                                           "exclusiveMinimum": 0,
                                                           "maximum": 500},
                                                 "currency": {"enum": ["USD", "EUR"]}}},
                       "n": {"type": "integer", "minimum": -3, "maximum": 40}}},
    "arrays": {
        "type": "object", "required": ["tags", "scores"], "additionalProperties": False,
        "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b", "c"]},
                                "maxItems": 3},
                       "scores": {"type": "array", "items": {"type": "integer", "minimum": 0,
                                                            "maximum": 9},
                                  "minItems": 1, "maxItems": 2}}},
}
