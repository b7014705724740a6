"""What a config (or a request) asks generated answers to follow, checked before any model
loads:

    eval.constrain: json          any JSON object
    eval.constrain: json_schema   the JSON Schema in data.schema_file

    spec = constraint_spec(config)       None when eval.constrain is unset
    grammar = spec.compile(tokenizer)    a loralab.models.grammar.Grammar (cached)

A schema file that is not JSON, not a JSON Schema, or one the grammar engine cannot compile
is a one-line ConfigError naming `data.schema_file` (and the engine's reason, which names the
schema keyword); a missing engine names the extra that installs it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from loralab.errors import ConfigError
from loralab.models.grammar.constraint import Grammar
from loralab.models.grammar.engine import ENGINE, grammar_error, json_grammar
from loralab.models.grammar.lowering import lower_conditionals

ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class ConstraintSpec:
    kind: str                  # "json" | "json_schema"
    schema: dict[str, Any]     # as given ({"type": "object"} for json)
    grammar: str               # the engine's grammar text
    source: str                # where the schema came from, for messages

    def compile(self, tokenizer: Any) -> Grammar:
        return compiled_grammar(self.grammar, tokenizer, self.source)


@functools.lru_cache(maxsize=32)
def compiled_grammar(grammar: str, tokenizer: Any, source: str) -> Grammar:
    return Grammar(grammar, tokenizer, description=source)


def load_schema_file(path: str | Path, key: str = "data.schema_file") -> dict[str, Any]:
    """The JSON Schema in `path`, checked against its metaschema; errors name `key`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc}") from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{key}: {path} is not JSON ({exc.msg} at line {exc.lineno} column "
                          f"{exc.colno})") from None
    check_json_schema(schema, f"{key}: {path}")
    return schema


def check_json_schema(schema: Any, where: str) -> None:
    """Refuse what is not a JSON Schema object (the metaschema of its `$schema`, else 2020-12)."""
    if not isinstance(schema, dict):
        raise ConfigError(f"{where} is not a JSON Schema: expected a JSON object, got "
                          f"{type(schema).__name__}")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "/".join(str(p) for p in exc.absolute_path)
        raise ConfigError(f"{where} is not a JSON Schema: {exc.message}"
                          + (f" (at {at})" if at else "")) from None


def schema_spec(schema: dict[str, Any], where: str, kind: str = "json_schema"
                ) -> ConstraintSpec:
    """A checked schema -> its grammar; refused with the engine's reason when it cannot
    compile. `where` names the schema's source in messages (a config key, a request field)."""
    check_json_schema(schema, where)
    grammar = json_grammar(lower_conditionals(schema))
    reason = grammar_error(grammar)
    if reason is not None:
        raise ConfigError(f"{where}: the grammar engine ({ENGINE}) cannot constrain decoding "
                          f"to this schema: {reason}")
    return ConstraintSpec(kind, schema, grammar, where)


def constraint_spec(config: Any) -> ConstraintSpec | None:
    """The constraint of `config.eval.constrain`, checked (None when unset)."""
    kind = config.eval.constrain
    if kind is None:
        return None
    if kind == "json":
        return schema_spec(ANY_OBJECT, "eval.constrain=json", kind)
    if not config.data.schema_file:  # the config rule says so too; an API caller may skip it
        raise ConfigError("eval.constrain=json_schema needs data.schema_file: the JSON Schema "
                          "answers must follow")
    path = config.data.schema_file
    return schema_spec(load_schema_file(path), f"data.schema_file: {path}")
