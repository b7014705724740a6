"""Generation metric suites: JSON extraction, SQuAD QA, multiple choice, code pass@1, BLEU/ROUGE."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from loralab.errors import ConfigError
from loralab.evaluation.generation import (
    METRIC_SUITES,
    compute_generation_metrics,
    evaluate_generation,
)
from loralab.evaluation.generation.code_suite import (
    SandboxLimits,
    extract_code,
    run_tests,
)
from loralab.evaluation.generation.json_suite import extract_json_object
from loralab.evaluation.generation.multiple_choice_suite import extract_choice
from loralab.evaluation.generation.qa_suite import compute_f1, normalize_answer

# ---------------------------------------------------------------- registry


def test_registry_names_and_unknown_suite() -> None:
    assert set(METRIC_SUITES) == {"json", "qa", "multiple_choice", "code", "text"}
    with pytest.raises(ConfigError, match="unknown generation metric suite 'bleu'.*code, json"):
        compute_generation_metrics("bleu", ["x"], [{"reference": "x"}])


def test_unknown_option_and_length_mismatch() -> None:
    with pytest.raises(ConfigError, match="no option.*schemas.*its options: schema"):
        compute_generation_metrics("json", ["{}"], [{"output": {}}], schemas={})
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        compute_generation_metrics("qa", ["a", "b"], [{"answers": ["a"]}])


# ---------------------------------------------------------------- json

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["intent", "entities"],
    "properties": {
        "intent": {"enum": ["book_flight", "order_food"]},
        "entities": {"type": "object", "required": ["city"],
                     "properties": {"city": {"type": "string"}, "quantity": {"type": "integer"}}},
    },
}


@pytest.mark.parametrize(("text", "expected"), [
    ('{"intent": "a"}', {"intent": "a"}),
    ('```json\n{"intent": "a", "entities": {}}\n```', {"intent": "a", "entities": {}}),
    ('Sure! Here it is:\n```\n{"intent": "a"}\n```\nAnything else?', {"intent": "a"}),
    ('The JSON is {"intent": "a", "entities": {"city": "Paris {x}"}} as asked. {"b": 1}',
     {"intent": "a", "entities": {"city": "Paris {x}"}}),
    ('{not json} but then {"intent": "b"}', {"intent": "b"}),
    ('```json\n{"intent": "a", "entities": {"city": "Oslo"}}', {"intent": "a",
                                                               "entities": {"city": "Oslo"}}),
    ('{"intent": "a", "note": "say \\"hi\\" {"}', {"intent": "a", "note": 'say "hi" {'}),
])
def test_extract_json_object_tolerates_fences_and_prose(text: str, expected: dict) -> None:
    assert extract_json_object(text) == expected


@pytest.mark.parametrize("text", [
    "", "no json here", '{"intent": "a",', "{'intent': 'a'}", "[1, 2]", '"just a string"',
    '{"intent": "a" "entities": {}}',
    '```json\n{"intent": "a", "entities": {"city": "Oslo"}',  # truncated: inner object no
])
def test_extract_json_object_rejects_malformed(text: str) -> None:
    assert extract_json_object(text) is None


def test_json_suite_schema_compliance() -> None:
    gold = {"output": {"intent": "book_flight", "entities": {"city": "Paris"}}}
    predictions = [
        '{"intent": "book_flight", "entities": {"city": "Paris"}}',  # compliant
        '{"intent": "book_flight", "entities": {}}',  # missing required city
        '{"intent": "book_flight", "entities": {"city": "Paris", "quantity": "2"}}',  # type
        '{"intent": "fly", "entities": {"city": "Paris"}}',  # intent not in the enum
        '{"intent": "book_flight", "entities": {"city": "Paris"}',  # not JSON
    ]
    result = evaluate_generation("json", predictions, [gold] * 5, schema=SCHEMA)
    assert [d["schema_compliant"] for d in result.details] == [True, False, False, False, False]
    assert result.metrics["schema_compliance"] == pytest.approx(1 / 5)
    assert result.metrics["valid_json"] == pytest.approx(4 / 5)
    assert result.metrics["intent_accuracy"] == pytest.approx(3 / 5)
    assert "city" in result.details[1]["schema_errors"][0]


def test_json_suite_entity_precision_recall_by_hand() -> None:
    golds = [
        {"intent": "book_flight", "entities": {"city": "New York", "date": "2025-03-04"}},
        {"intent": "transfer_money",
         "entities": {"amount": {"value": 40.5, "currency": "EUR"}, "recipient": "Ana"}},
        {"intent": "order_food", "entities": {"quantity": 3, "item": "tea"}},
        {"intent": "order_food", "entities": {"quantity": 3}},
    ]
    predictions = [
        # city matches after casefold + whitespace collapse, date is wrong: 1 of 2
        '{"intent": "book_flight", "entities": {"city": " new   YORK", "date": "2025-03-05"}}',
        # 40.50 == 40.5, "eur" == "EUR", recipient right, date extra: 3 of 4 predicted
        'Result: {"intent": "transfer_money", "entities": {"amount": {"value": 40.50, '
        '"currency": "eur"}, "recipient": "Ana", "date": "2025-01-01", "note": null}}',
        "I cannot help with that.",  # nothing predicted, 2 gold missed
        '{"intent": "order_food", "entities": {"quantity": "3"}}',  # a string is not 3
    ]
    metrics = compute_generation_metrics("json", predictions, [{"output": g} for g in golds])
    # true positives 4, predicted 2 + 4 + 0 + 1 = 7, gold 2 + 3 + 2 + 1 = 8
    assert metrics["json_entity_precision"] == pytest.approx(4 / 7)
    assert metrics["json_entity_recall"] == pytest.approx(4 / 8)
    assert metrics["json_entity_f1"] == pytest.approx(8 / 15)
    assert metrics["intent_accuracy"] == pytest.approx(3 / 4)
    assert metrics["valid_json"] == pytest.approx(3 / 4)
    assert metrics["n"] == 4 and "schema_compliance" not in metrics


def test_json_suite_rejects_an_invalid_schema() -> None:
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        compute_generation_metrics("json", ["{}"], [{"output": {}}], schema={"type": 12})


# ---------------------------------------------------------------- qa


@pytest.mark.parametrize(("text", "normalised"), [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  an   apple,  a pear and THE  plum. ", "apple pear and plum"),
    ("theater", "theater"),  # articles only as whole words
    ("U.S.A.", "usa"),
    ("The", ""),
])
def test_squad_normalisation(text: str, normalised: str) -> None:
    assert normalize_answer(text) == normalised


def test_qa_suite_exact_match_and_f1_best_over_gold_answers() -> None:
    predictions = ["the Eiffel Tower", "Paris France", "in 1889", "", "London"]
    references = [
        {"answers": ["Eiffel Tower"]},  # EM after dropping "the"
        {"answers": ["Paris", "Paris, France"]},  # second gold is exact
        {"answers": ["1889", "the year 1889"]},  # F1 best: {1889} vs {in, 1889} -> 2/3
        {"answers": ["", "  the "]},  # no real gold: only "" counts, and "" matches it
        {"answers": ["Paris"]},
    ]
    metrics = compute_generation_metrics("qa", predictions, references)
    assert metrics["exact_match"] == pytest.approx(3 / 5)
    assert metrics["qa_f1"] == pytest.approx((1 + 1 + 2 / 3 + 1 + 0) / 5)


def test_qa_f1_empty_strings_follow_the_official_script() -> None:
    assert compute_f1("", "") == 1.0
    assert compute_f1("the", "a") == 1.0  # both normalise to nothing
    assert compute_f1("Paris", "") == 0.0
    assert compute_f1("", "Paris") == 0.0


# ---------------------------------------------------------------- multiple choice

OPTIONS = ["London", "Paris", "Rome", "Berlin"]


@pytest.mark.parametrize(("text", "letter"), [
    ("The answer is (C)", "C"),
    ("Answer: C", "C"),
    ("C.", "C"),
    ("**C**", "C"),
    ("(c)", "C"),
    ("C) because Rome is the capital", "C"),
    ("I think it's B, no wait, the answer is D", "D"),
    ("Let me think. A is wrong and B is too.\nFinal answer: **D**", "D"),
    ("The answer is option B.", "B"),
    ("A cat would say D.", "D"),  # "A cat" is an article, not option A
    ("Rome", "C"),  # the option's text instead of a letter
    ("I am fairly sure it is Berlin.", "D"),
    ("The answer is E, or maybe B", "B"),  # E is not an option of a 4-option question
    ("the answer is a bit unclear", None),
    ("I don't know", None),
])
def test_extract_choice(text: str, letter: str | None) -> None:
    assert extract_choice(text, "ABCD", OPTIONS) == letter


def test_letters_beyond_the_options_are_ignored() -> None:
    assert extract_choice("The answer is D", "ABC") is None
    assert extract_choice("The answer is D", "ABCDE") == "D"


def test_multiple_choice_accuracy_per_category() -> None:
    references = [
        {"answer": "B", "options": OPTIONS, "category": "geography"},
        {"answer": "C", "options": OPTIONS, "category": "geography"},
        {"answer": "A", "options": ["yes", "no"], "category": "logic"},
        {"answer": 1, "options": ["yes", "no"], "category": "logic"},
        {"answer": "D", "options": OPTIONS},
    ]
    predictions = ["Answer: B", "I'd go with (d)", "yes", "No idea at all", "**D**"]
    result = evaluate_generation("multiple_choice", predictions, references)
    assert [d["extracted"] for d in result.details] == ["B", "D", "A", None, "D"]
    assert result.metrics["mc_accuracy"] == pytest.approx(3 / 5)
    assert result.metrics["mc_extraction_rate"] == pytest.approx(4 / 5)
    assert result.metrics["mc_accuracy/geography"] == pytest.approx(1 / 2)
    assert result.metrics["mc_accuracy/logic"] == pytest.approx(1 / 2)
    assert not any(key.startswith("mc_accuracy/None") for key in result.metrics)


# ---------------------------------------------------------------- code

ADD_TESTS = {"test_list": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]}
ADD = "def add(a, b):\n    return a + b\n"
FAST = SandboxLimits(timeout_s=5.0)


def test_extract_code_prefers_the_python_fence() -> None:
    text = f"Here:\n```python\n{ADD}```\nUsage:\n```\nadd(1, 2)\n```"
    assert extract_code(text) == ADD
    assert extract_code(f"```py\n{ADD}") == ADD  # unclosed fence (generation cut off)
    assert extract_code(ADD) == ADD


def test_sandbox_pass_fail_and_setup() -> None:
    assert run_tests(ADD, ADD_TESTS, FAST).status == "passed"
    failed = run_tests("def add(a, b):\n    return a - b\n", ADD_TESTS, FAST)
    assert failed.status == "failed" and "test 0" in failed.detail
    reference = {"test_list": ["assert total(data) == 6"], "test_setup_code": "data = [1, 2, 3]",
                 "test_imports": ["import math"]}
    solution = "def total(xs):\n    return math.fsum(xs)\n"
    assert run_tests(solution, reference, FAST).status == "passed"
    assert run_tests("def add(a, b) return", ADD_TESTS, FAST).status == "error"


def test_sandbox_exit_before_the_tests_is_not_a_pass() -> None:
    for code in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n"):
        assert run_tests(code + ADD, ADD_TESTS, FAST).status == "error"


def test_sandbox_infinite_loop_times_out_and_is_killed() -> None:
    result = run_tests("def add(a, b):\n    while True:\n        pass\n", ADD_TESTS,
                       SandboxLimits(timeout_s=1.0))
    assert result.status == "timeout"
    assert 1.0 <= result.duration_s < 3.0
    with pytest.raises(ProcessLookupError):
        os.kill(result.pid, 0)


@pytest.mark.parametrize("attempt", [
    "open({target!r}, 'w').write('x')",
    "import pathlib\npathlib.Path({target!r}).write_text('x')",
    "import os\nos.close(os.open({target!r}, os.O_CREAT | os.O_WRONLY))",
    "import os\nos.symlink({folder!r}, 'link')\nopen('link/escaped.txt', 'w').write('x')",
    "import shutil\nopen('mine.txt', 'w').write('x')\nshutil.copy('mine.txt', {target!r})",
])
def test_sandbox_refuses_writes_outside_its_folder(tmp_path: Path, attempt: str) -> None:
    target = tmp_path / "escaped.txt"
    code = attempt.format(target=str(target), folder=str(tmp_path)) + "\n" + ADD
    result = run_tests(code, ADD_TESTS, FAST)
    assert result.status == "error"
    assert "PermissionError" in result.detail
    assert not target.exists()


def test_sandbox_refuses_removing_and_renaming_outside_files(tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    for attempt in (f"import os\nos.remove({str(keep)!r})",
                    f"import os\nos.rename({str(keep)!r}, 'stolen.txt')",
                    f"import shutil\nshutil.rmtree({str(tmp_path)!r})"):
        assert run_tests(attempt + "\n" + ADD, ADD_TESTS, FAST).status == "error"
    assert keep.read_text() == "precious"


def test_sandbox_allows_files_inside_its_folder() -> None:
    code = ("import os, shutil, tempfile\n"
            "open('notes.txt', 'w').write('ok')\n"
            "os.makedirs('a/b')\nos.rename('notes.txt', 'a/b/notes.txt')\nshutil.rmtree('a')\n"
            "tempfile.NamedTemporaryFile().close()\n") + ADD
    result = run_tests(code, ADD_TESTS, FAST)
    assert result.status == "passed", result.detail


@pytest.mark.parametrize("use_unshare", [True, False])
def test_sandbox_refuses_sockets(use_unshare: bool) -> None:
    code = "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)\n" + ADD
    limits = SandboxLimits(timeout_s=5.0, use_unshare=use_unshare)
    result = run_tests(code, ADD_TESTS, limits)
    assert result.status == "error" and "network access is disabled" in result.detail


def test_sandbox_refuses_starting_processes() -> None:
    code = f"import subprocess\nsubprocess.run([{sys.executable!r}, '-c', 'pass'])\n" + ADD
    result = run_tests(code, ADD_TESTS, FAST)
    assert result.status == "error" and "starting processes" in result.detail


def test_sandbox_memory_limit() -> None:
    code = "blob = bytearray(8 * 1024 ** 3)\n" + ADD
    result = run_tests(code, ADD_TESTS, SandboxLimits(timeout_s=5.0, memory_bytes=512 << 20))
    assert result.status == "error" and "MemoryError" in result.detail


def test_code_suite_metrics() -> None:
    predictions = [f"```python\n{ADD}```", "def add(a, b):\n    return 0\n",
                   "def add(a, b):\n    while True:\n        pass\n", "no code, sorry"]
    metrics = compute_generation_metrics("code", predictions, [ADD_TESTS] * 4, timeout_s=1.0,
                                         workers=2)
    assert metrics == {"n": 4.0, "pass@1": 0.25, "code_timeouts": 1.0, "code_errors": 1.0,
                       "code_failures": 1.0}


# ---------------------------------------------------------------- text


def test_text_suite_identical_and_disjoint() -> None:
    same = "the quick brown fox jumps over the lazy dog"
    identical = compute_generation_metrics("text", [same], [{"reference": same}])
    assert identical["bleu"] == pytest.approx(100.0)
    assert identical["rougeL"] == pytest.approx(1.0)
    disjoint = compute_generation_metrics("text", ["alpha beta gamma delta"],
                                          [{"reference": same}])
    assert disjoint["bleu"] == pytest.approx(0.0)
    assert disjoint["rougeL"] == pytest.approx(0.0)


def test_text_suite_matches_sacrebleu_and_rouge_by_hand() -> None:
    import sacrebleu

    predictions = ["the cat sat on the mat", "a dog barked loudly at night"]
    references = ["the cat is sitting on the mat", "the dog barked at night"]
    metrics = compute_generation_metrics("text", predictions,
                                         [{"reference": r} for r in references])
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(predictions,
                                                                  [references]).score)
    # LCS: "the cat on the mat" = 5 of 6 / 7 tokens; "dog barked at night" = 4 of 6 / 5 tokens
    first = 2 * (5 / 6) * (5 / 7) / (5 / 6 + 5 / 7)
    second = 2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5)
    assert metrics["rougeL"] == pytest.approx((first + second) / 2)
