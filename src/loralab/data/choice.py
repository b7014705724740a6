"""Multiple-choice questions as causal-LM records: all fields of the row, with
`options` a list of option texts and `answer` an upper-case letter ("A" = the first option).

Options come from an `options` (or `choices`) list or {"A": ..., "B": ...} object, or, in flat
tables such as CSV, from columns A, B, C, ... or option_a, option_b, ... in that order (blank
trailing cells are dropped, so rows may have fewer options). The answer may be written as
    a letter     "C", "c", "(C)", "C."
    an index     2 (0-based; also "2" in a CSV when no option's text is "2")
    option text  the text of one of the options
A letter wins over an option whose text is that letter. A test split may lack answers (None).
"""

from __future__ import annotations

import re
import string
from typing import Any

from loralab.data.readers import Table
from loralab.errors import DataError

Record = dict[str, Any]
LETTERS = string.ascii_uppercase
LETTER_RE = re.compile(r"^\(?([A-Za-z])[).:]?$")


def choice_records(table: Table, split: str) -> list[Record]:
    """Checked multiple-choice records of one table; `split` "test" may lack answers."""
    option_source = options_column(table)
    records = []
    for row, values in table.rows:
        where = {"file": table.source, "row": row}
        question = values.get("question")
        if not isinstance(question, str) or not question.strip():
            raise DataError("no question (expected a non-empty string)", **where,
                            column="question")
        options = read_options(values, option_source, where)
        answer = values.get("answer")
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            if split != "test":
                raise DataError("the answer is missing", **where, column="answer")
            letter = None
        else:
            letter = answer_letter(answer, options, **where, column="answer")
        records.append({**values, "question": question, "options": options, "answer": letter,
                        "_src": f"{table.source}:{row}"})
    return records


def options_column(table: Table) -> str | list[Any]:
    """Where the options are: the name of a list column, or the option columns in order."""
    for name in ("options", "choices"):
        if name in table.columns:
            return name
    by_letter = _lettered_columns(table.columns, "")
    by_prefix = _lettered_columns(table.columns, "option_")
    found = by_prefix if len(by_prefix) > len(by_letter) else by_letter
    if len(found) < 2:
        shown = ", ".join(repr(c) for c in table.columns)
        raise DataError("no options found: expected an 'options' list or option columns "
                        f"A, B, C, ... (or option_a, option_b, ...); columns here: {shown}",
                        file=table.source, column="options")
    return found


def _lettered_columns(columns: list[Any], prefix: str) -> list[Any]:
    """Columns named <prefix>A, <prefix>B, ... (any case), consecutive from A."""
    folded = {str(c).casefold(): c for c in columns}
    found = []
    for letter in LETTERS:
        column = folded.get(f"{prefix}{letter}".casefold())
        if column is None:
            break
        found.append(column)
    return found


def read_options(values: dict[Any, Any], source: str | list[Any],
                 where: dict[str, Any]) -> list[str]:
    if isinstance(source, str):
        raw = values.get(source)
        if isinstance(raw, dict) and _letter_keyed(raw):
            raw = [raw[k] for k in sorted(raw, key=str.upper)]
        if not isinstance(raw, list):
            found = "nothing" if raw is None else type(raw).__name__
            raise DataError(f"expected a list of options, found {found}", **where, column=source)
        columns = [source] * len(raw)
    else:
        raw = [values.get(c) for c in source]
        columns = list(source)
        while raw and _blank(raw[-1]):  # fewer options on this row
            raw.pop()
            columns.pop()
    first = source if isinstance(source, str) else str(source[0])
    options = []
    for value, column in zip(raw, columns, strict=True):
        if _blank(value) or isinstance(value, (list, dict)):
            what = "empty" if _blank(value) else f"a {type(value).__name__}, not text"
            raise DataError(f"option {LETTERS[len(options)]} is {what}", **where,
                            column=str(column))
        options.append(str(value))
    if len(options) < 2:
        raise DataError(f"{len(options)} option(s); a question needs at least 2", **where,
                        column=first)
    if len(options) > len(LETTERS):
        raise DataError(f"{len(options)} options; at most {len(LETTERS)} (A-Z) are supported",
                        **where, column=first)
    return options


def _letter_keyed(options: dict[Any, Any]) -> bool:
    """{"A": ..., "B": ...}: single-letter keys, consecutive from A (any case)."""
    keys = sorted(str(k).upper() for k in options)
    return bool(keys) and keys == list(LETTERS[:len(keys)]) and all(
        isinstance(k, str) for k in options)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def answer_letter(answer: Any, options: list[str], *, file: str, row: int,
                  column: str) -> str:
    """The answer as a letter: from a letter, a 0-based index or an option's text."""
    letters = LETTERS[:len(options)]
    index = _index(answer, options)
    if index is not None and 0 <= index < len(options):
        return letters[index]
    raise DataError(f"the answer {answer!r} is not one of the {len(options)} options: give a "
                    f"letter {letters[0]}-{letters[-1]}, a 0-based index 0-{len(options) - 1} "
                    "or an option's text", file=file, row=row, column=column)


def _index(answer: Any, options: list[str]) -> int | None:
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer
    if isinstance(answer, float):
        return int(answer) if answer.is_integer() else None
    if not isinstance(answer, str):
        return None
    text = answer.strip()
    letter = LETTER_RE.match(text)
    if letter and letter.group(1).upper() in LETTERS[:len(options)]:
        return LETTERS.index(letter.group(1).upper())
    for match in (lambda o: o == answer, lambda o: o.strip() == text,
                  lambda o: o.strip().casefold() == text.casefold()):
        hits = [i for i, option in enumerate(options) if match(option)]
        if hits:
            return hits[0]
    return int(text) if text.isdigit() else None
