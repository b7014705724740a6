"""Build canonical example records from a `Table`: find the columns, check and convert values.

Classification / regression records: {"text", "text_pair", "label", "_src"};
token classification records: {"tokens", "tags", "_src"}. `_src` is "<source>:<row>".
"""

from __future__ import annotations

import math
from typing import Any

from loralab.config import ColumnsConfig
from loralab.data.readers import Table
from loralab.data.tags import to_bio
from loralab.errors import DataError

CANDIDATES: dict[str, tuple[str, ...]] = {
    "text": ("text", "sentence", "sentence1", "question", "#1 String", "full_text", "utterance",
             "content", "prompt"),
    "text_pair": ("text_pair", "sentence2", "#2 String", "question2"),
    "label": ("label", "labels", "score", "Quality", "intent", "class", "target",
              "is_injection"),
    "tokens": ("tokens", "words"),
    "tags": ("tags", "ner_tags", "labels"),
}


def find_column(table: Table, canonical: str, mapped: str | int | None,
                candidates: tuple[str, ...], *, lenient: bool = False) -> Any:
    """The source column for `canonical`: the mapped one, else the first candidate present.

    A mapped column that is absent is a DataError (None when `lenient`); no candidate -> None.
    """
    if mapped is not None:
        if mapped in table.columns:
            return mapped
        if isinstance(mapped, int) and 0 <= mapped < len(table.columns):
            return table.columns[mapped]
        if lenient:
            return None
        raise DataError(f"data.columns.{canonical} names a column that is not there; columns "
                        f"here: {_listing(table)}", file=table.source, column=str(mapped))
    folded = {str(c).casefold(): c for c in reversed(table.columns)}
    for name in candidates:
        if name in table.columns:
            return name
        if name.casefold() in folded:
            return folded[name.casefold()]
    return None


def require_column(table: Table, canonical: str, mapped: str | int | None) -> Any:
    found = find_column(table, canonical, mapped, CANDIDATES[canonical])
    if found is None:
        raise DataError(f"no {canonical} column found (looked for "
                        f"{', '.join(CANDIDATES[canonical])}); columns here: {_listing(table)}; "
                        f"set data.columns.{canonical}", file=table.source)
    return found


def _listing(table: Table) -> str:
    return ", ".join(repr(c) for c in table.columns) or "(none)"


def sentence_records(table: Table, columns: ColumnsConfig, numeric_labels: bool,
                     split: str) -> list[dict[str, Any]]:
    """{"text", "text_pair", "label", "_src"} records; `split` "test" may lack labels."""
    text_col = require_column(table, "text", columns.text)
    pair_col = find_column(table, "text_pair", columns.text_pair, CANDIDATES["text_pair"])
    if pair_col == text_col:
        pair_col = None
    is_test = split == "test"
    label_col = find_column(table, "label", columns.label, CANDIDATES["label"], lenient=is_test)
    if label_col is None and not is_test:
        require_column(table, "label", columns.label)
    convert = regression_label if numeric_labels else class_label
    records = []
    for row, values in table.rows:
        where = {"file": table.source, "row": row}
        label = None
        if label_col is not None:
            label = values.get(label_col)
            if _blank(label):
                if not is_test:
                    raise DataError("the label is missing", **where, column=str(label_col))
                label = None
            else:
                label = convert(label, **where, column=str(label_col))
        pair = values.get(pair_col) if pair_col is not None else None
        records.append({
            "text": text_value(values.get(text_col), **where, column=str(text_col)),
            "text_pair": None if pair is None else text_value(pair, **where,
                                                              column=str(pair_col), empty=True),
            "label": label,
            "_src": f"{table.source}:{row}",
        })
    return records


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text_value(value: Any, *, file: str, row: int, column: str, empty: bool = False) -> str:
    if isinstance(value, (list, dict)):
        raise DataError(f"expected text, found a {type(value).__name__}",
                        file=file, row=row, column=column)
    text = "" if value is None else str(value)
    if not empty and not text.strip():
        raise DataError("the text is empty", file=file, row=row, column=column)
    return text


def class_label(value: Any, *, file: str, row: int, column: str) -> str:
    """A class label as a string: "1" for 1 or 1.0, "true"/"false" for booleans."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        raise DataError(f"expected one label, found a {type(value).__name__}",
                        file=file, row=row, column=column)
    return str(value)


def regression_label(value: Any, *, file: str, row: int, column: str) -> float:
    try:
        if isinstance(value, (bool, list, dict)):
            raise ValueError
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise DataError(f"the label {value!r} is not a number (the task needs numeric labels)",
                        file=file, row=row, column=column)
    return number


def token_records(table: Table, columns: ColumnsConfig) -> list[dict[str, Any]]:
    tok_col = require_column(table, "tokens", columns.tokens)
    tag_col = require_column(table, "tags", columns.tags)
    records = []
    for row, values in table.rows:
        where = {"file": table.source, "row": row}
        tokens = word_list(values.get(tok_col), **where, column=str(tok_col))
        tags = word_list(values.get(tag_col), **where, column=str(tag_col), names=True)
        if not tokens:
            raise DataError("no tokens", **where, column=str(tok_col))
        if len(tokens) != len(tags):
            raise DataError(f"{len(tokens)} tokens but {len(tags)} tags", **where,
                            column=str(tag_col))
        records.append({"tokens": tokens, "tags": to_bio(tags, **where, column=str(tag_col)),
                        "_src": f"{table.source}:{row}"})
    return records


def word_list(value: Any, *, file: str, row: int, column: str,
              names: bool = False) -> list[str]:
    """A list of words: a list as is, or a string split on whitespace."""
    if isinstance(value, str):
        return value.split()
    if not isinstance(value, (list, tuple)):
        raise DataError(f"expected a list, found {type(value).__name__}",
                        file=file, row=row, column=column)
    if names and any(not isinstance(v, str) for v in value):
        raise DataError("tags must be names such as B-PER, not numbers (a data.hub dataset "
                        "carries the names)", file=file, row=row, column=column)
    return [str(v) for v in value]
