"""The one rule for prediction inputs, in `loralab predict` and in `loralab serve` alike:

    check_prediction_inputs(records, pairs)

`records` are raw inputs (`{"text": ..., "text_pair": ...}`, file rows, request bodies);
`pairs` says what the adapter was trained on: True text pairs, False single texts, None not
recorded. Refused, with an InputError that names the input (its `index` and `field`):

- no inputs at all;
- a text, second text or prompt that is empty or only whitespace (never answered, never
  silently dropped);
- a NUL byte or a string that is not valid Unicode (a lone surrogate, as undecodable bytes on
  the command line become) in any field;
- a pair adapter given a single text, a single-text adapter given a second text;
- a `tokens` list that is empty or holds something other than non-blank strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loralab.errors import InputError

TEXT_FIELDS = ("text", "text_pair", "prompt")
NAMES = {"text": "the text", "text_pair": "the second text (text_pair)",
         "prompt": "the prompt", "tokens": "the tokens"}


def check_prediction_inputs(records: Sequence[Mapping[str, Any]], pairs: bool | None) -> None:
    if not records:
        raise InputError("no inputs to predict (an empty file or request)")
    for index, record in enumerate(records):
        for field, value in record.items():
            if not field.startswith("_"):
                check_value(value, index, record, field)
        for field in TEXT_FIELDS:
            value = record.get(field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"{where(index, record)}: {NAMES[field]} is empty or only "
                                 "whitespace", index=index, field=field)
        check_tokens(record, index)
        check_pair(record, index, pairs)


def check_pair(record: Mapping[str, Any], index: int, pairs: bool | None) -> None:
    given = record.get("text_pair") is not None
    if pairs is False and given:
        raise InputError(f"{where(index, record)}: this adapter was trained on single texts: "
                         "give no second text (--text-pair / text_pair)",
                         index=index, field="text_pair")
    if pairs and not given and "text" in record:
        raise InputError(f"{where(index, record)}: this adapter was trained on text pairs: "
                         "give a second text for every input (--text-pair / text_pair)",
                         index=index, field="text_pair")


def check_tokens(record: Mapping[str, Any], index: int) -> None:
    tokens = record.get("tokens")
    if tokens is None:
        return
    if not isinstance(tokens, list) or not tokens or not all(
            isinstance(t, str) and t.strip() for t in tokens):
        raise InputError(f"{where(index, record)}: the tokens must be a non-empty list of "
                         "non-blank strings", index=index, field="tokens")


def check_value(value: Any, index: int, record: Mapping[str, Any], field: str) -> None:
    """No NUL byte and nothing but valid Unicode in a string, or in a list / mapping's."""
    if isinstance(value, str):
        problem = string_problem(value)
        if problem:
            raise InputError(f"{where(index, record)}: {NAMES.get(field, field)} {problem}",
                             index=index, field=field)
    elif isinstance(value, Mapping):
        for item in value.values():
            check_value(item, index, record, field)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_value(item, index, record, field)


def string_problem(text: str) -> str | None:
    if "\x00" in text:
        return f"holds a NUL byte (at character {text.index(chr(0))})"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"is not valid Unicode text (character {exc.start}: {text[exc.start]!r}; "
                "undecodable bytes?)")
    return None


def where(index: int, record: Mapping[str, Any]) -> str:
    """`--text:2`, `file.jsonl:7` (the record's source), else `input 3`."""
    return str(record.get("_src") or f"input {index + 1}")
