"""The synthetic JSON-extraction dataset: deterministic, schema-valid, varied, split cleanly."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from loralab.data.synth_json import (
    CURRENCIES,
    INTENTS,
    JSON_EXTRACTION_TEMPLATE,
    MONTHS,
    NUMBER_WORDS,
    WEEKDAYS,
    json_extraction_prompt,
    json_extraction_schema,
    json_extraction_target,
    write_json_extraction_dataset,
)

N = 1000
FILES = ("train.jsonl", "eval.jsonl", "schema.json")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("synth")
    return folder, write_json_extraction_dataset(folder, N, seed=7)


@pytest.fixture(scope="module")
def rows(dataset: tuple[Path, dict]) -> dict[str, list[dict]]:
    folder, _ = dataset
    return {"train": read_jsonl(folder / "train.jsonl"), "eval": read_jsonl(folder / "eval.jsonl")}


def test_same_seed_same_bytes_other_seed_other_rows(tmp_path: Path,
                                                    dataset: tuple[Path, dict]) -> None:
    folder, _ = dataset
    write_json_extraction_dataset(tmp_path / "again", N, seed=7)
    write_json_extraction_dataset(tmp_path / "other", N, seed=8)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes()
    other = (tmp_path / "other" / "train.jsonl").read_bytes()
    assert other != (folder / "train.jsonl").read_bytes()
    assert not list(tmp_path.glob("**/.*.tmp"))  # atomic writes leave no temp files


def test_counts_ids_and_summary(dataset: tuple[Path, dict], rows: dict[str, list[dict]]) -> None:
    folder, summary = dataset
    assert summary["train"] == folder / "train.jsonl" and summary["schema"] == folder / FILES[2]
    assert (summary["n_train"], summary["n_eval"]) == (900, 100)
    assert (len(rows["train"]), len(rows["eval"])) == (900, 100)
    ids = [row["id"] for part in rows.values() for row in part]
    assert len(set(ids)) == N
    assert sum(summary["intents"].values()) == N


def test_at_least_eight_intents_roughly_balanced(rows: dict[str, list[dict]]) -> None:
    counts = Counter(row["intent"] for part in rows.values() for row in part)
    assert len(counts) >= 8
    assert {"book_flight", "order_food", "set_reminder", "transfer_money", "book_hotel",
            "check_weather", "schedule_meeting", "cancel_order"} <= set(counts)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert all(row["output"]["intent"] == row["intent"] for part in rows.values() for row in part)


def test_every_gold_row_validates_against_schema_json(dataset: tuple[Path, dict],
                                                       rows: dict[str, list[dict]]) -> None:
    folder, _ = dataset
    schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
    assert schema == json_extraction_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for part in rows.values():
        for row in part:
            assert not list(validator.iter_errors(row["output"])), row


@pytest.mark.parametrize("bad", [
    {"intent": "book_flight", "entities": {"date": "2025-03-04"}},  # missing destination
    {"intent": "order_food", "entities": {"item": "lattes", "quantity": "3"}},  # wrong type
    {"intent": "order_food", "entities": {"item": "lattes", "quantity": 0}},  # below minimum
    {"intent": "fly_me", "entities": {"destination": "Paris", "date": "2025-03-04"}},
    {"intent": "book_flight", "entities": {"destination": "Paris", "date": "March 4"}},
    {"intent": "set_reminder", "entities": {"task": "x", "time": "25:00"}},
    {"intent": "transfer_money", "entities": {"amount": 40, "recipient": "Ana"}},
    {"intent": "transfer_money", "entities": {"amount": {"value": 40}, "recipient": "Ana"}},
    {"intent": "check_weather", "entities": {"city": "Oslo", "mood": "sunny"}},  # unknown field
    {"intent": "check_weather"},  # no entities object
    {"intent": "check_weather", "entities": {"city": "Oslo"}, "confidence": 0.9},
])
def test_schema_rejects_wrong_objects(bad: dict) -> None:
    assert not jsonschema.Draft202012Validator(json_extraction_schema()).is_valid(bad)


def test_schema_accepts_a_minimal_object_per_intent() -> None:
    validator = jsonschema.Draft202012Validator(json_extraction_schema())
    assert validator.is_valid({"intent": "check_weather", "entities": {"city": "Oslo"}})
    assert validator.is_valid({"intent": "transfer_money", "entities": {
        "amount": {"value": 40.5, "currency": "EUR"}, "recipient": "Ana"}})


def test_train_and_eval_messages_are_disjoint_and_unique(rows: dict[str, list[dict]]) -> None:
    train = [row["message"] for row in rows["train"]]
    evaluation = [row["message"] for row in rows["eval"]]
    assert len(set(train)) == len(train) and len(set(evaluation)) == len(evaluation)
    assert not set(train) & set(evaluation)


def _shape(row: dict) -> str:
    """The message with entity values, dates, numbers and currency words masked."""
    text = row["message"].casefold()
    strings = [v for v in row["output"]["entities"].values() if isinstance(v, str)]
    for value in sorted(strings, key=len, reverse=True):
        text = text.replace(value.casefold(), "<v>")
    words = [*MONTHS, *(m[:3] for m in MONTHS), *WEEKDAYS, *NUMBER_WORDS,
             *(word for currency in CURRENCIES for word in currency if word)]
    for word in sorted(words, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(word.casefold())}(?!\w)", "<w>", text)
    return re.sub(r"\d+(st|nd|rd|th)?", "#", text)


def test_messages_are_varied(rows: dict[str, list[dict]]) -> None:
    shapes = Counter(_shape(row) for part in rows.values() for row in part)
    assert len(shapes) >= 0.5 * N
    assert shapes.most_common(1)[0][1] <= 0.02 * N
    with_optional = sum(len(row["output"]["entities"]) > sum(
        e.required for e in INTENTS[row["intent"]].entities) for row in rows["train"])
    assert 0.2 * len(rows["train"]) < with_optional < 0.9 * len(rows["train"])


def test_templates_mention_required_entities_outside_optional_parts() -> None:
    for name, intent in INTENTS.items():
        assert len(intent.templates) >= 6, name
        fields = {e.name: e for e in intent.entities}
        for template in intent.templates:
            outside = re.sub(r"\[[^\]]*\]", "", template)
            slots = re.findall(r"\{(\w+)\}", template)
            assert set(slots) <= set(fields), template
            assert all(f"{{{e.name}}}" in outside for e in intent.entities if e.required)
            assert all(fields[s].required for s in re.findall(r"\{(\w+)\}", outside))


def test_prompt_and_target(rows: dict[str, list[dict]]) -> None:
    row = rows["eval"][0]
    prompt = json_extraction_prompt(row)
    assert prompt == json_extraction_prompt(row["message"])
    assert f"Message: {row['message']}\n" in prompt and prompt.endswith("JSON:\n")
    assert all(intent in prompt for intent in INTENTS)
    assert '{"intent": ..., "entities": {...}}' in prompt
    assert "{message}" in JSON_EXTRACTION_TEMPLATE and "{catalogue}" in JSON_EXTRACTION_TEMPLATE
    assert json.loads(json_extraction_target(row)) == row["output"]


@pytest.mark.parametrize(("n", "fraction"), [(1, 0.1), (10, 0.0), (10, 1.0)])
def test_bad_arguments_raise(tmp_path: Path, n: int, fraction: float) -> None:
    with pytest.raises(ValueError):
        write_json_extraction_dataset(tmp_path, n, seed=0, eval_fraction=fraction)
    assert not list(tmp_path.iterdir())
