"""OpenAI's `response_format` on /v1/completions and /v1/chat/completions: the request's
format -> the compiled grammar each of its rows follows (loralab.models.grammar).

    {"type": "text"}                  free text, as without the field
    {"type": "json_object"}           one JSON object, any keys
    {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": ...}}
                                      one JSON document that follows `schema`

    spec = await response_spec(body.response_format)   before the model is looked up: None for
                                                       text, a 400 naming response_format
    grammar = await compiled(spec, lease.tokenizer)    per (tokenizer, schema), from an LRU
    GenerationRow(..., constraint=grammar.constraint())   one parser state per row

Both steps run off the event loop (asyncio.to_thread), so a slow check or compile (a large
schema; the engine's view of a new tokenizer's vocabulary, 1-3 s for 49k tokens) never stalls
other requests. Checked schemas and compiled grammars are kept in two small LRUs; a schema
that is refused is not kept (asking again answers the same 400).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from loralab.errors import UserError
from loralab.models.grammar import ConstraintSpec, Grammar, schema_spec
from loralab.models.grammar.engine import require_engine
from loralab.models.grammar.spec import ANY_OBJECT
from loralab.serving.discovery import one_line
from loralab.serving.http_errors import ServeError
from loralab.serving.openai_api import ResponseFormat

PARAM = "response_format"
TYPES = ("text", "json_object", "json_schema")
SCHEMA_WHERE = "response_format.json_schema.schema"
V = TypeVar("V")


class LRU:
    """A thread-safe least-recently-used map of at most `size` entries. A value is made
    outside the lock (two threads missing the same key may both make it; the later wins)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Any, make: Callable[[], V]) -> V:
        with self.lock:
            if key in self.items:
                self.hits += 1
                self.items.move_to_end(key)
                return self.items[key]
            self.misses += 1
        value = make()
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


SPECS = LRU(128)        # a schema (as sent, key order kept: it orders the output) -> its spec
GRAMMARS = LRU(32)      # (tokenizer, grammar text) -> the compiled Grammar


async def response_spec(fmt: ResponseFormat | None) -> ConstraintSpec | None:
    """The constraint a request's response_format asks for (None: free text), checked."""
    if fmt is None or fmt.type == "text":
        return None
    return await asyncio.to_thread(checked_spec, fmt)


def checked_spec(fmt: ResponseFormat) -> ConstraintSpec:
    if fmt.type is None:
        raise ServeError(400, f"response_format.type is missing: one of "
                              f"{', '.join(map(repr, TYPES))}", PARAM)
    if fmt.type not in TYPES:
        raise ServeError(400, f"response_format.type: {fmt.type!r} is not one of "
                              f"{', '.join(map(repr, TYPES))}", PARAM)
    if fmt.type == "json_object":
        schema, kind = ANY_OBJECT, "json"
    elif fmt.json_schema is None:
        raise ServeError(400, "response_format.json_schema is missing: type json_schema needs "
                              '{"name": ..., "schema": {...}}', PARAM)
    elif fmt.json_schema.schema_ is None:
        raise ServeError(400, f"{SCHEMA_WHERE} is missing: the JSON Schema every answer must "
                              "follow", PARAM)
    else:
        schema, kind = fmt.json_schema.schema_, "json_schema"
    try:
        require_engine(PARAM)
        return SPECS.get((kind, json.dumps(schema)),
                         lambda: schema_spec(schema, SCHEMA_WHERE if kind == "json_schema"
                                             else "response_format json_object", kind))
    except UserError as exc:  # not a JSON Schema, one the engine cannot compile, no engine
        raise ServeError(400, one_line(exc), PARAM) from None


async def compiled(spec: ConstraintSpec | None, tokenizer: Any) -> Grammar | None:
    """The grammar of `spec` for `tokenizer` (None for free text), compiled off the loop."""
    if spec is None:
        return None
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise ServeError(400, "response_format needs a model whose tokenizer has an EOS token "
                              "(it ends the document)", PARAM)
    try:  # the Grammar holds the tokenizer, so no other tokenizer takes its id while cached
        return await asyncio.to_thread(
            GRAMMARS.get, (id(tokenizer), spec.grammar),
            lambda: Grammar(spec.grammar, tokenizer, description=spec.source))
    except UserError as exc:
        raise ServeError(400, f"response_format: {one_line(exc)}", PARAM) from None


def logged(fmt: ResponseFormat | None) -> dict[str, Any]:
    """The format as the response log keeps it beside the request (nothing for text)."""
    if fmt is None or fmt.type == "text":
        return {}
    return {PARAM: fmt.model_dump(by_alias=True, exclude_none=True)}
