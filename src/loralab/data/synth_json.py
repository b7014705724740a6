"""A synthetic JSON-extraction dataset: user messages -> {"intent", "entities"} (job 3).

    write_json_extraction_dataset(out_dir, n, seed) -> summary; writes train.jsonl, eval.jsonl,
        schema.json
    json_extraction_schema() -> the JSON Schema (draft 2020-12) every gold object follows
    json_extraction_prompt(row) / json_extraction_target(row) -> the SFT prompt and answer

Each row: {"id", "intent", "message", "output": {"intent": ..., "entities": {...}}}.
Gold entity values are normalised: dates "YYYY-MM-DD", times "HH:MM" (24 h), amounts
{"value": number, "currency": ISO 4217 code}, quantities integers, order ids "K12345"; names,
cities and items as written. Messages show each value in one of several surface forms
("March 4, 2026", "4 March 2026", "$1,250.50", "1250.50 USD", "two", "3:30 pm", ...).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json, atomic_write_text
from loralab.data.synth_json_intents import INTENTS, Entity
from loralab.data.synth_json_pools import (
    CITIES,
    CURRENCIES,
    DATE_SPAN_DAYS,
    FIRST_DATE,
    FIRST_NAMES,
    LAST_NAMES,
    MONTHS,
    NUMBER_WORDS,
    WEEKDAYS,
)

_STRING = {"type": "string", "minLength": 1}
KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "date": {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"},
    "time": {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"},
    "city": _STRING, "person": _STRING, "item": _STRING,
    "order_id": {"type": "string", "pattern": r"^[A-Z][0-9]{5}$"},
    "quantity": {"type": "integer", "minimum": 1},
    "amount": {"type": "object", "required": ["value", "currency"], "additionalProperties": False,
               "properties": {"value": {"type": "number", "exclusiveMinimum": 0},
                              "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
}

JSON_EXTRACTION_TEMPLATE = (
    "Extract the intent and the entities from the user's message. Reply with one JSON object "
    '{{"intent": ..., "entities": {{...}}}} and nothing else.\n'
    "Intents and their entities (* = required):\n"
    "{catalogue}\n"
    "Dates are YYYY-MM-DD, times HH:MM (24-hour), amounts "
    '{{"value": number, "currency": "USD"}} with an ISO currency code, quantities integers. '
    "Leave out entities the message does not mention.\n\n"
    "Message: {message}\n"
    "JSON:\n"
)

_SLOT = re.compile(r"\{(\w+)\}")
_OPTIONAL_PART = re.compile(r"\[([^\[\]]*)\]")
_KEEP_OPTIONAL = 0.6  # chance that an optional entity a template can mention is mentioned
_FORMAL = (("Good morning. ", "Good afternoon. ", "Hello. ", "Hi there! ", ""),
           (" Thank you.", " Thank you in advance.", " Many thanks.", " Much appreciated.", ""))
_CASUAL = (("hey ", "hi, ", "ok so ", "quick one: ", "yo, ", ""),
           (" thx", " thanks!", " ty", " cheers", " pls", ""))


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _draw_date(rng: random.Random) -> tuple[str, str]:
    day = FIRST_DATE + dt.timedelta(days=rng.randrange(DATE_SPAN_DAYS))
    month, d, y = MONTHS[day.month - 1], day.day, day.year
    forms = (f"{month} {d}, {y}", f"{d} {month} {y}", f"{month[:3]} {_ordinal(d)} {y}",
             f"{month} {_ordinal(d)}, {y}", day.isoformat(),
             f"{WEEKDAYS[day.weekday()]}, {month} {d}, {y}")
    return day.isoformat(), rng.choice(forms)


def _draw_time(rng: random.Random) -> tuple[str, str]:
    hour, minute = rng.randint(6, 22), rng.choice((0, 0, 15, 30, 45))
    twelve, half = hour % 12 or 12, ("am" if hour < 12 else "pm")
    clock = f"{twelve}" if minute == 0 else f"{twelve}:{minute:02d}"
    forms = (f"{clock} {half}", f"{clock}{half}", f"{clock} {half.upper()}",
             f"{hour:02d}:{minute:02d}", f"{hour}:{minute:02d}")
    return f"{hour:02d}:{minute:02d}", rng.choice(forms)


def _draw_amount(rng: random.Random) -> tuple[dict[str, Any], str]:
    code, symbol, word = rng.choice(CURRENCIES)
    if code == "JPY":
        value: float = rng.randrange(500, 200_000, 100)
    elif rng.random() < 0.3:
        value = rng.randint(500, 300_000) / 100
    else:
        value = rng.randint(5, 3000)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    pattern = "{:,.2f}" if isinstance(value, float) else "{:,}"
    if rng.random() < 0.5:
        pattern = pattern.replace(",", "")
    number = pattern.format(value)
    forms = [f"{number} {word}", f"{number} {code}", f"{code} {number}"]
    forms += [f"{symbol}{number}"] * 2 if symbol else []
    return {"value": value, "currency": code}, rng.choice(forms)


def _draw_quantity(rng: random.Random, entity: Entity) -> tuple[int, str]:
    value = rng.randint(entity.low, entity.high)
    in_words = value < len(NUMBER_WORDS) and rng.random() < 0.4
    return value, NUMBER_WORDS[value] if in_words else str(value)


def _draw_person(rng: random.Random) -> tuple[str, str]:
    first = rng.choice(FIRST_NAMES)
    name = f"{first} {rng.choice(LAST_NAMES)}" if rng.random() < 0.7 else first
    return name, name


def _draw_order_id(rng: random.Random) -> tuple[str, str]:
    order_id = f"{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.randint(10_000, 99_999)}"
    return order_id, order_id


def _same(value: str) -> tuple[str, str]:
    return value, value


_DRAWS: dict[str, Callable[[random.Random, Entity], tuple[Any, str]]] = {
    "date": lambda rng, _: _draw_date(rng),
    "time": lambda rng, _: _draw_time(rng),
    "amount": lambda rng, _: _draw_amount(rng),
    "quantity": _draw_quantity,
    "person": lambda rng, _: _draw_person(rng),
    "order_id": lambda rng, _: _draw_order_id(rng),
    "city": lambda rng, _: _same(rng.choice(CITIES)),
    "item": lambda rng, entity: _same(rng.choice(entity.pool)),
}


def render_template(template: str, surfaces: Mapping[str, str]) -> str:
    """Fill `template`'s slots; an optional [ ... ] part stays only if its slots are filled."""
    def keep(part: re.Match[str]) -> str:
        filled = all(slot in surfaces for slot in _SLOT.findall(part.group(1)))
        return part.group(1) if filled else ""

    return _SLOT.sub(lambda slot: surfaces[slot.group(1)], _OPTIONAL_PART.sub(keep, template))


def _register(rng: random.Random) -> tuple[str, str, bool]:
    """(opener, closer, lower-case?): as written, formal (greeting, thanks) or casual (lower
    case, short thanks)."""
    register = rng.random()
    if register < 0.4:
        return "", "", False
    openers, closers = _FORMAL if register < 0.7 else _CASUAL
    return rng.choice(openers), rng.choice(closers), register >= 0.7


def make_example(rng: random.Random, intent: str) -> tuple[str, dict[str, Any]]:
    """One (message, gold output) of `intent`, every choice drawn from `rng`."""
    spec = INTENTS[intent]
    template = rng.choice(spec.templates)
    mentioned = _SLOT.findall(template)
    entities: dict[str, Any] = {}
    surfaces: dict[str, str] = {}
    for entity in spec.entities:
        if entity.name not in mentioned:
            continue
        if not entity.required and rng.random() >= _KEEP_OPTIONAL:
            continue
        entities[entity.name], surfaces[entity.name] = _DRAWS[entity.kind](rng, entity)
    opener, closer, lower = _register(rng)
    if lower:  # casual: all lower case except order ids, no final full stop
        template = template.lower()
        surfaces = {name: text if name == "order_id" else text.lower()
                    for name, text in surfaces.items()}
    text = render_template(template, surfaces)
    text = text.rstrip(".") if lower else text[:1].upper() + text[1:]
    return f"{opener}{text}{closer}", {"intent": intent, "entities": entities}


def make_examples(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` rows with distinct messages, intents in turn, then shuffled; same seed, same rows."""
    rng = random.Random(seed)
    names = list(INTENTS)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"could not make {n} distinct messages")
        intent = names[len(rows) % len(names)]
        message, output = make_example(rng, intent)
        if message in seen:
            continue
        seen.add(message)
        rows.append({"id": f"jx-{len(rows):06d}", "intent": intent, "message": message,
                     "output": output})
    rng.shuffle(rows)
    return rows


def json_extraction_schema() -> dict[str, Any]:
    """Draft 2020-12 schema: `intent` from the enum, and per intent (if/then) the entities
    object with its required fields, typed fields and no unknown fields."""
    branches = []
    for name, spec in INTENTS.items():
        entities = {
            "type": "object",
            "properties": {e.name: {"$ref": f"#/$defs/{e.kind}"} for e in spec.entities},
            "required": [e.name for e in spec.entities if e.required],
            "additionalProperties": False,
        }
        branches.append({"if": {"properties": {"intent": {"const": name}}},
                         "then": {"properties": {"entities": entities}}})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Intent and entities extracted from a user message",
        "type": "object",
        "required": ["intent", "entities"],
        "additionalProperties": False,
        "properties": {"intent": {"enum": list(INTENTS)}, "entities": {"type": "object"}},
        "allOf": branches,
        "$defs": KIND_SCHEMAS,
    }


def _catalogue() -> str:
    lines = []
    for name, spec in INTENTS.items():
        fields = ", ".join(f"{e.name}{'*' if e.required else ''} ({e.kind})"
                           for e in spec.entities)
        lines.append(f"- {name}: {fields}")
    return "\n".join(lines)


def json_extraction_prompt(row: Mapping[str, Any] | str) -> str:
    """JSON_EXTRACTION_TEMPLATE filled with the intent catalogue and the row's message."""
    message = row if isinstance(row, str) else row["message"]
    return JSON_EXTRACTION_TEMPLATE.format(catalogue=_catalogue(), message=message)


def json_extraction_target(row: Mapping[str, Any]) -> str:
    """The answer the model is trained to write: the gold object as one line of JSON."""
    return json.dumps(row["output"], ensure_ascii=False)


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_json_extraction_dataset(out_dir: Path, n: int, seed: int,
                                  eval_fraction: float = 0.1) -> dict[str, Any]:
    """Write train.jsonl, eval.jsonl and schema.json under `out_dir` (each atomically).

    n rows in all, round(n * eval_fraction) (at least 1) of them in eval; messages are
    distinct, so no message is in both files. Same arguments, same bytes. Returns the paths,
    the row counts and the number of rows per intent.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2 (one train and one eval row), got {n}")
    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction must be between 0 and 1, got {eval_fraction}")
    out_dir = Path(out_dir)
    rows = make_examples(n, seed)
    n_eval = min(n - 1, max(1, round(n * eval_fraction)))
    eval_rows, train_rows = rows[:n_eval], rows[n_eval:]
    paths = {"train": out_dir / "train.jsonl", "eval": out_dir / "eval.jsonl",
             "schema": out_dir / "schema.json"}
    # each row carries its ready prompt (instruction + intent catalogue + message), so a
    # config needs no template: the causal LM task reads the `prompt` field
    train_rows = [{**row, "prompt": json_extraction_prompt(row)} for row in train_rows]
    eval_rows = [{**row, "prompt": json_extraction_prompt(row)} for row in eval_rows]
    atomic_write_text(paths["train"], _jsonl(train_rows))
    atomic_write_text(paths["eval"], _jsonl(eval_rows))
    atomic_write_json(paths["schema"], json_extraction_schema())
    return {**paths, "n_train": len(train_rows), "n_eval": len(eval_rows),
            "intents": dict(Counter(row["intent"] for row in rows))}
