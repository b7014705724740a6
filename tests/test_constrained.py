"""Grammar-constrained decoding on a tiny random Llama (character-level tokenizer): sampled
answers always parse and follow their schema, free rows of a mixed batch decode exactly as
without the constrained ones, EOS comes only where the grammar allows it, an answer cut by
max_new_tokens is an invalid row that is counted, and if/then unions compile exactly."""

from __future__ import annotations

import copy
import importlib.util
import json
import random

import jsonschema
import pytest
import torch
from schema_cases import SCHEMAS
from transformers import AutoModelForCausalLM, AutoTokenizer

from loralab.errors import ConfigError
from loralab.models.generate import Decoding, generate
from loralab.models.grammar import schema_spec
from loralab.models.grammar.lowering import lower_conditionals

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llguidance") is None,
                                reason="needs the grammar engine: pip install "
                                       "'loralab[structured]' (scripts/install.sh does it)")

PROMPTS = [f"message {i}: {w}" for i, w in enumerate(
    ["book a flight", "pay 30 eur", "cancel it", "hello", "tags please", "x", "a b c", "42"])]


@pytest.fixture(scope="module")
def lm(tiny_llama):
    return (AutoModelForCausalLM.from_pretrained(tiny_llama).eval(),
            AutoTokenizer.from_pretrained(tiny_llama))


def grammar_of(schema, tokenizer):
    return schema_spec(schema, "test schema").compile(tokenizer)


@pytest.mark.parametrize("seed, name", list(enumerate(SCHEMAS)))
def test_sampled_constrained_answers_always_parse_and_validate(lm, seed, name):
    model, tokenizer = lm
    schema = SCHEMAS[name]
    prompts = PROMPTS * 2
    decoding = Decoding(max_new_tokens=400, do_sample=True, temperature=1.0, seed=seed,
                        batch_size=len(prompts))
    answers = generate(model, tokenizer, prompts, decoding,
                       constraints=[grammar_of(schema, tokenizer)] * len(prompts),
                       add_special_tokens=False)
    assert len({a.text for a in answers}) > len(answers) // 2  # sampling: distinct answers
    validator = jsonschema.Draft202012Validator(schema)
    for answer in answers:
        assert answer.finish == "eos" and answer.complete is True, answer
        validator.validate(json.loads(answer.text))


INTENT = {"type": "object", "required": ["intent"], "additionalProperties": False,
          "properties": {"intent": {"enum": ["book", "cancel", "pay"]}}}


@pytest.mark.parametrize("sampled", [False, True])
def test_free_rows_of_a_mixed_batch_decode_exactly_as_without_constraints(lm, sampled):
    model, tokenizer = lm
    grammar = grammar_of(INTENT, tokenizer)
    decoding = Decoding(max_new_tokens=120, do_sample=sampled, seed=3,
                        batch_size=len(PROMPTS))
    free = generate(model, tokenizer, PROMPTS, decoding, add_special_tokens=False)
    mixed = generate(model, tokenizer, PROMPTS, decoding, add_special_tokens=False,
                     constraints=[grammar if i % 2 == 0 else None for i in range(len(PROMPTS))])
    for i, (alone, beside) in enumerate(zip(free, mixed)):
        if i % 2:
            assert beside == alone  # text, finish reason and token count
        else:
            assert beside.complete is True
            jsonschema.validate(json.loads(beside.text), INTENT)
    assert any(m.text != f.text for m, f in zip(mixed[::2], free[::2]))  # the mask acted


def allowed(row, vocab_size):
    logits = torch.zeros(vocab_size)
    row.mask(logits)
    return torch.isfinite(logits)


def test_eos_is_allowed_only_where_the_grammar_accepts(lm):
    _, tokenizer = lm
    row = grammar_of(SCHEMAS["enum_required_closed"], tokenizer).constraint()
    eos, width = tokenizer.eos_token_id, len(tokenizer) + 7  # logits wider than the vocabulary
    assert not allowed(row, width)[eos]
    for token in tokenizer.encode('{"intent": "pay", "ok": true', add_special_tokens=False):
        assert allowed(row, width)[token] and not allowed(row, width)[eos]
        row.advance(token)
    assert not row.complete and not allowed(row, width)[eos]
    row.advance(tokenizer.convert_tokens_to_ids("}"))
    mask = allowed(row, width)
    assert row.complete and mask[eos] and int(mask.sum()) == 1  # nothing may follow but EOS
    assert not mask[len(tokenizer):].any()


def test_an_answer_cut_at_max_new_tokens_is_counted_invalid_not_a_crash(lm, tiny_llama,
                                                                       intent_lm_files):
    from loralab.config import load_config
    from loralab.evaluation.generation_eval import generation_metrics
    from loralab.tasks import get_task

    model, tokenizer = lm
    train, dev = intent_lm_files
    config = load_config(None, [f"model.name={tiny_llama}", "model.task=causal_lm",
                                f"data.train={train}", f"data.validation={dev}",
                                "data.prompt_template='{message} -> '",
                                "data.response_template='{output}'", "data.metrics=[json]",
                                "eval.constrain=json", "eval.max_new_tokens=6"])
    task = get_task("causal_lm", config)
    records = [json.loads(line) for line in dev.read_text().splitlines()][:4]
    metrics, details = generation_metrics(model, tokenizer, task, records, config)
    assert metrics["generated"] == 4 and metrics["truncated"] == 4
    assert metrics["valid_json"] == 0.0
    assert all(d["finish"] == "length" and d["complete"] is False for d in details)
    assert all(d["generated"].startswith("{") for d in details)


def test_unconstrained_generation_reports_no_completeness(lm):
    model, tokenizer = lm
    out = generate(model, tokenizer, PROMPTS[:2], Decoding(max_new_tokens=5),
                   add_special_tokens=False)
    assert all(o.complete is None and o.finish in {"eos", "length"} for o in out)


# --------------------------------------------------------------------------- if/then unions
def test_discriminated_if_then_becomes_an_equivalent_any_of_the_engine_compiles():
    from loralab.data.synth_json import INTENTS, json_extraction_schema, make_examples

    schema = json_extraction_schema()
    lowered = lower_conditionals(schema)
    assert "if" not in json.dumps(lowered) and schema == json_extraction_schema()
    schema_spec(schema, "the synthetic schema")  # compiles (the original would not)
    before = jsonschema.Draft202012Validator(schema)
    after = jsonschema.Draft202012Validator(lowered)
    rng = random.Random(0)
    verdicts = []
    for row in make_examples(200, 0):
        other = copy.deepcopy(row["output"])
        other["intent"] = rng.choice(list(INTENTS))
        extra = copy.deepcopy(row["output"])
        extra["entities"]["unknown"] = 1
        for instance in (row["output"], other, extra, {**row["output"], "entities": {}}):
            verdicts.append(before.is_valid(instance))
            assert after.is_valid(instance) == verdicts[-1]
    assert 0.2 < sum(verdicts) / len(verdicts) < 0.8  # both kinds were tried


def test_a_conditional_that_is_not_a_union_is_refused_naming_the_keyword():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}},
              "if": {"required": ["a"]}, "then": {"required": ["b"]}}
    assert lower_conditionals(schema) == schema
    with pytest.raises(ConfigError, match=r'^where: the grammar engine \(llguidance\) cannot '
                                          r'constrain decoding to this schema: .*"if"'):
        schema_spec(schema, "where")


def test_what_is_not_a_json_schema_is_refused():
    with pytest.raises(ConfigError, match="not a JSON Schema: 'strin' is not valid"):
        schema_spec({"type": "strin"}, "here")
    with pytest.raises(ConfigError, match="expected a JSON object, got list"):
        schema_spec([1], "here")
