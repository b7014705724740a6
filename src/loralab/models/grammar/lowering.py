"""Schema rewrites that keep a schema's meaning and let the grammar engine compile it.

Grammar engines implement no `if` / `then` / `else` (llguidance refuses it, others ignore it
silently). One use of it is common enough to rewrite exactly: a *discriminated union*, where
each condition tests a required property with a finite set of values,

    {"required": ["intent", ...], "properties": {"intent": {"enum": ["a", "b"]}, ...},
     "allOf": [{"if": {"properties": {"intent": {"const": "a"}}}, "then": A}, ...]}

which means, for each value v of the enum, "intent is v and every `then` whose condition v
meets (and every `else` whose condition it does not) holds":

    "allOf": [{"anyOf": [{"properties": {"intent": {"const": "a"}}, "allOf": [A]},
                         {"properties": {"intent": {"const": "b"}}}]}]

Every other conditional is left as it is, so the engine's refusal names the keyword.
"""

from __future__ import annotations

import copy
from typing import Any

SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SCHEMA_VALUES = ("items", "additionalProperties", "unevaluatedProperties", "contains", "not",
                 "if", "then", "else", "propertyNames")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
CONDITION_KEYS = {"properties", "required"}


def lower_conditionals(schema: Any) -> Any:
    """`schema` with every discriminated-union `allOf` of if/then(/else) rewritten as an
    `anyOf` over the discriminator's values; a new object, the argument is not changed."""
    return _lower(copy.deepcopy(schema))


def _lower(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    for key in SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            node[key] = {name: _lower(sub) for name, sub in node[key].items()}
    for key in SCHEMA_VALUES:
        if key in node:
            node[key] = _lower(node[key])
    for key in SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            node[key] = [_lower(sub) for sub in node[key]]
    if isinstance(node.get("allOf"), list):
        node["allOf"] = _union_of_conditionals(node, node["allOf"])
    return node


def _union_of_conditionals(node: dict[str, Any], parts: list[Any]) -> list[Any]:
    conditionals = [p for p in parts if _condition(p) is not None]
    names = {_condition(p)[0] for p in conditionals}
    if not conditionals or len(names) != 1:
        return parts
    name = names.pop()
    values = _discriminator_values(node, name)
    if values is None:
        return parts
    branches = []
    for value in values:
        applies = [p["then"] if value in _condition(p)[1] else p["else"]
                   for p in conditionals
                   if ("then" if value in _condition(p)[1] else "else") in p]
        branch: dict[str, Any] = {"properties": {name: {"const": value}}}
        if applies:
            branch["allOf"] = applies
        branches.append(branch)
    others = [p for p in parts if all(p is not c for c in conditionals)]
    return [{"anyOf": branches}, *others]


def _condition(part: Any) -> tuple[str, list[Any]] | None:
    """(property, the values that meet the condition) of `{"if": {"properties": {P: {"const":
    v}}}, "then": ..., "else": ...}` (or an `enum` of values), else None."""
    if not isinstance(part, dict) or "if" not in part or set(part) - {"if", "then", "else"}:
        return None
    condition = part["if"]
    if not isinstance(condition, dict) or set(condition) - CONDITION_KEYS:
        return None
    properties = condition.get("properties")
    if not isinstance(properties, dict) or len(properties) != 1:
        return None
    (name, test), = properties.items()
    if set(condition.get("required", [name])) != {name} or not isinstance(test, dict):
        return None
    if set(test) == {"const"}:
        return name, [test["const"]]
    if set(test) == {"enum"} and isinstance(test["enum"], list):
        return name, list(test["enum"])
    return None


def _discriminator_values(node: dict[str, Any], name: str) -> list[Any] | None:
    """The finite values of a required property of `node` (its own enum or const)."""
    if name not in node.get("required", []):
        return None  # absent, it would meet every condition: not a plain union
    spec = node.get("properties", {}).get(name)
    if not isinstance(spec, dict):
        return None
    if "enum" in spec and isinstance(spec["enum"], list):
        return list(spec["enum"])
    if "const" in spec:
        return [spec["const"]]
    return None
