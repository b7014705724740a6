"""Grammar-constrained decoding: JSON (any object, or a JSON Schema) enforced token by token.

    spec = constraint_spec(config)             eval.constrain + data.schema_file, checked
    grammar = spec.compile(tokenizer)          compiled once per schema and tokenizer
    row = grammar.constraint()                 per generated row: row.mask(logits),
                                               row.advance(token_id), row.complete

The engine (llguidance, the `loralab[structured]` extra) is imported only when a constraint
is asked for; see loralab.models.grammar.engine.
"""

from loralab.models.grammar.constraint import Grammar, GrammarConstraint
from loralab.models.grammar.engine import ENGINE, EXTRA
from loralab.models.grammar.spec import (
    ConstraintSpec,
    check_json_schema,
    constraint_spec,
    load_schema_file,
    schema_spec,
)

__all__ = ["ENGINE", "EXTRA", "ConstraintSpec", "Grammar", "GrammarConstraint",
           "check_json_schema", "constraint_spec", "load_schema_file", "schema_spec"]
