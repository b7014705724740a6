"""Intent + slot datasets -> JSON extraction (`loralab data slots`): each utterance becomes
prompt -> {"intent": ..., "entities": {slot: value}}, with the JSON Schema of every answer.

Readers (one `Utterance` shape out: text, intent, [(slot, value)]):
    segments  SNIPS / snips-nlu JSON: {Intent: [{"data": [{"text", "entity"?}, ...]}]}; the
              text is the segments joined, a segment with an `entity` is that slot's value
    bio       table rows (jsonl, json, csv, tsv, parquet) with tokens, BIO tags (lists, or
              space-separated strings: CoNLL / ATIS-style) and an intent column; a slot value
              is its B-/I- run of tokens joined by spaces
    spans     table rows with text, intent and a list of character spans {start, end, label
              (or entity_type / entity)}, as Rasa-style or Presidio-style exports give them

Writes train.jsonl, eval.jsonl (rows {"id", "intent", "message", "output", "prompt"}, the
shape of `loralab data synth json-extraction`, so the json metric suite scores them) and
schema.json (draft 2020-12): `intent` from the enum of intents, per intent (if/then) an
entities object whose properties are the slots seen with that intent, additionalProperties
false. A slot that occurs more than once in one utterance has a list of its values (the
schema then allows a string or a list of strings for that slot).

Text read from JSON may hold surrogate-escaped characters (SNIPS' PlayMusic file stores emoji
as UTF-16 surrogate pairs encoded one by one, which is not valid UTF-8): the files are read
with errors="surrogatepass" and pairs are joined into the characters they encode.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralab.data.readers import read_table, unique_keys
from loralab.data.records import text_value
from loralab.data.spans import _span
from loralab.data.tags import to_bio
from loralab.errors import DataError

SLOT_TEMPLATE = (
    "Extract the intent and the slots from the user's message. Reply with one JSON object "
    '{{"intent": ..., "entities": {{...}}}} and nothing else.\n'
    "Intents and their slots:\n"
    "{catalogue}\n"
    "Copy each slot value as the message writes it; leave out slots the message does not "
    "mention.\n\n"
    "Message: {message}\n"
    "JSON:\n"
)


@dataclass
class Utterance:
    text: str
    intent: str
    slots: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""

    def entities(self) -> dict[str, Any]:
        values: dict[str, list[str]] = defaultdict(list)
        for slot, value in self.slots:
            values[slot].append(value)
        return {slot: found[0] if len(found) == 1 else found for slot, found in values.items()}


def valid_text(text: str) -> str:
    """Surrogate pairs joined into the characters they encode; a lone surrogate becomes
    U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def read_segments(path: Path) -> list[Utterance]:
    """{Intent: [{"data": [{"text", "entity"?}, ...]}, ...]} (SNIPS' per-intent files)."""
    source = str(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8", "surrogatepass"),
                          object_pairs_hook=unique_keys)
    except ValueError as exc:
        raise DataError(f"not valid JSON: {exc}", file=source) from None
    if not isinstance(data, dict):
        raise DataError('expected {"Intent": [utterances]}', file=source)
    out = []
    for intent, utterances in data.items():
        if not isinstance(utterances, list):
            raise DataError(f"intent {intent!r}: expected a list of utterances", file=source)
        for row, utterance in enumerate(utterances, start=1):
            out.append(_segments(utterance, intent, source, row))
    return out


def _segments(utterance: Any, intent: str, source: str, row: int) -> Utterance:
    segments = utterance.get("data") if isinstance(utterance, dict) else None
    if not isinstance(segments, list) or not all(isinstance(s, dict) and
                                                 isinstance(s.get("text"), str)
                                                 for s in segments):
        raise DataError(f'intent {intent!r}: an utterance must be {{"data": [{{"text": ...}}]}}',
                        file=source, row=row, column="data")
    text = valid_text("".join(s["text"] for s in segments)).strip()
    slots = [(str(s["entity"]), valid_text(s["text"]).strip()) for s in segments
             if s.get("entity") and s["text"].strip()]
    return Utterance(text, intent, slots, f"{source}:{row}")


def _words(value: Any, **where: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise DataError("expected a list of strings or a space-separated string", **where)


def read_bio(path: Path, fmt: str, columns: dict[str, str]) -> list[Utterance]:
    """Rows with tokens, BIO tags and an intent."""
    table = read_table(path, fmt)
    out = []
    for row, values in table.rows:
        where = {"file": table.source, "row": row}
        tokens = _words(_column(values, columns["tokens"], where), **where,
                        column=columns["tokens"])
        tags = _words(_column(values, columns["tags"], where), **where, column=columns["tags"])
        if len(tags) != len(tokens):
            raise DataError(f"{len(tokens)} tokens but {len(tags)} tags", **where,
                            column=columns["tags"])
        tags = to_bio(tags, file=table.source, row=row, column=columns["tags"])
        intent = text_value(_column(values, columns["intent"], where), **where,
                            column=columns["intent"])
        out.append(Utterance(" ".join(tokens), intent, bio_slots(tokens, tags),
                             f"{table.source}:{row}"))
    return out


def bio_slots(tokens: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """(slot, its words joined by spaces) for each B-/I- run of BIO tags."""
    slots: list[tuple[str, list[str]]] = []
    for token, tag in zip(tokens, tags):
        if tag.startswith("B-"):
            slots.append((tag[2:], [token]))
        elif tag.startswith("I-"):
            slots[-1][1].append(token)
    return [(slot, " ".join(words)) for slot, words in slots]


def read_spans(path: Path, fmt: str, columns: dict[str, str]) -> list[Utterance]:
    """Rows with a text, an intent and character spans {start, end, label}."""
    table = read_table(path, fmt)
    out = []
    for row, values in table.rows:
        where = {"file": table.source, "row": row}
        text = text_value(_column(values, columns["text"], where), **where,
                          column=columns["text"])
        intent = text_value(_column(values, columns["intent"], where), **where,
                            column=columns["intent"])
        spans = values.get(columns["spans"]) or []
        if not isinstance(spans, list):
            raise DataError("expected a list of spans", **where, column=columns["spans"])
        found = [_span(_labelled(s), len(text), **where, column=columns["spans"])
                 for s in spans]
        slots = [(label, text[start:end].strip()) for start, end, label in sorted(found)]
        out.append(Utterance(valid_text(text).strip(), intent, slots, f"{table.source}:{row}"))
    return out


def _labelled(span: Any) -> Any:
    """Rasa writes the slot name as `entity`."""
    if isinstance(span, dict) and "label" not in span and "entity" in span:
        return {**span, "label": span["entity"]}
    return span


def _column(values: dict[str, Any], name: str, where: dict[str, Any]) -> Any:
    if name not in values:
        raise DataError(f"no {name!r} field (columns here: {', '.join(map(str, values))})",
                        **where, column=name)
    return values[name]


def catalogue(utterances: list[Utterance]) -> dict[str, list[str]]:
    """intent -> its slot names, both sorted."""
    slots: dict[str, set[str]] = defaultdict(set)
    for utterance in utterances:
        slots[utterance.intent].update(slot for slot, _ in utterance.slots)
    return {intent: sorted(slots[intent]) for intent in sorted(slots)}


def slot_schema(utterances: list[Utterance]) -> dict[str, Any]:
    """The JSON Schema every answer follows (see the module doc)."""
    intents = catalogue(utterances)
    repeated = {(u.intent, slot) for u in utterances
                for slot, count in Counter(s for s, _ in u.slots).items() if count > 1}
    text = {"type": "string", "minLength": 1}
    several = {"anyOf": [text, {"type": "array", "items": text, "minItems": 2}]}
    branches = [{"if": {"properties": {"intent": {"const": intent}}},
                 "then": {"properties": {"entities": {
                     "type": "object", "additionalProperties": False,
                     "properties": {slot: several if (intent, slot) in repeated else text
                                    for slot in slots}}}}}
                for intent, slots in intents.items()]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Intent and slots extracted from a user message", "type": "object",
            "required": ["intent", "entities"], "additionalProperties": False,
            "properties": {"intent": {"enum": list(intents)}, "entities": {"type": "object"}},
            "allOf": branches}


def slot_prompt(message: str, intents: dict[str, list[str]]) -> str:
    lines = "\n".join(f"- {intent}: {', '.join(slots) or '(no slots)'}"
                      for intent, slots in intents.items())
    return SLOT_TEMPLATE.format(catalogue=lines, message=message)


def extraction_rows(utterances: list[Utterance], intents: dict[str, list[str]],
                    prefix: str) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i:06d}", "intent": u.intent, "message": u.text,
             "output": {"intent": u.intent, "entities": u.entities()},
             "prompt": slot_prompt(u.text, intents), "source": u.source}
            for i, u in enumerate(utterances)]


def check_intents(train: list[Utterance], other: list[Utterance], split: str) -> None:
    """Every intent and slot of `other` must be one training teaches (the schema's)."""
    known = catalogue(train)
    for utterance in other:
        slots = known.get(utterance.intent)
        if slots is None:
            raise DataError(f"the {split} intent {utterance.intent!r} is not in the training "
                            f"data (intents: {', '.join(known)})", file=utterance.source)
        unknown = [slot for slot, _ in utterance.slots if slot not in slots]
        if unknown:
            raise DataError(f"the {split} slot {unknown[0]!r} never occurs with intent "
                            f"{utterance.intent!r} in the training data",
                            file=utterance.source)


READERS = {"segments": lambda path, fmt, columns: read_segments(path),
           "bio": read_bio, "spans": read_spans}


def read_utterances(paths: list[Path], kind: str, columns: dict[str, str]) -> list[Utterance]:
    from loralab.data.readers import infer_format

    out: list[Utterance] = []
    for path in paths:
        fmt = "json" if kind == "segments" else infer_format(path)
        out.extend(READERS[kind](path, fmt, columns))
    if not out:
        raise DataError("no utterances", file=str(paths[0]) if paths else "")
    return out
