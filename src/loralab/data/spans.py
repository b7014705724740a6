"""Character-span data (the Presidio PII format) to word-level BIO tags, and the word splitter.

`split_words` is the one word-splitting rule for span data; prediction on raw text uses it too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from loralab.config import ColumnsConfig
from loralab.data.readers import Table, load_json, read_jsonl, table_from_records
from loralab.data.records import find_column, require_column, text_value
from loralab.errors import DataError

WORD_RE = re.compile(r"\w+(?:[-'.@]\w+)*|[^\w\s]")
SPAN_KEYS = {"label": ("entity_type", "label"), "start": ("start_position", "start"),
             "end": ("end_position", "end")}


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of `text` as (word, char start, char end).

    A word is a run of word characters joined by single - ' . or @ ("o'neil", "12.5",
    "e-mail", "jo.doe@mail.com" are one word each); any other non-space character is a word
    of its own.
    """
    return [(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]


def spans_to_bio(text: str, spans: list[tuple[int, int, str]]) -> tuple[list[str], list[str]]:
    """Words of `text` and their BIO tags for character spans (start, end, label).

    A word belongs to a span when it overlaps it; the first such word gets B-, the rest I-.
    Of two overlapping spans the longer is kept (the earlier on a tie).
    """
    words = split_words(text)
    tags = ["O"] * len(words)
    for start, end, label in drop_overlaps(spans):
        prefix = "B-"
        for i, (_, w_start, w_end) in enumerate(words):
            if w_start < end and start < w_end and tags[i] == "O":
                tags[i] = prefix + label
                prefix = "I-"
    return [w for w, _, _ in words], tags


def drop_overlaps(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    kept: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        if all(span[1] <= k[0] or k[1] <= span[0] for k in kept):
            kept.append(span)
    return sorted(kept)


def read_span_table(path: Path) -> Table:
    """A JSON list / {"data": [...]} of records, or JSONL (one record a line)."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    data = load_json(path)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError("expected a list of records with text and spans", file=str(path))
    return table_from_records(str(path), list(enumerate(data, start=1)))


def span_records(table: Table, columns: ColumnsConfig) -> list[dict[str, Any]]:
    """{"tokens", "tags", "_src"} records from a table with a text column and a "spans" list."""
    text_col = find_column(table, "text", columns.text, ("full_text", "text"))
    if text_col is None:
        text_col = require_column(table, "text", columns.text)
    spans_col = find_column(table, "tags", columns.tags, ("spans", "entities"))
    if spans_col is None:
        raise DataError("no spans column found (looked for spans, entities)",
                        file=table.source)
    records = []
    for row, values in table.rows:
        where = {"file": table.source, "row": row}
        text = text_value(values.get(text_col), **where, column=str(text_col))
        spans = [_span(s, len(text), **where, column=str(spans_col))
                 for s in values.get(spans_col) or []]
        tokens, tags = spans_to_bio(text, spans)
        records.append({"tokens": tokens, "tags": tags, "_src": f"{table.source}:{row}"})
    return records


def _span(span: Any, length: int, *, file: str, row: int, column: str) -> tuple[int, int, str]:
    if not isinstance(span, dict):
        raise DataError(f"expected a span object, found {type(span).__name__}",
                        file=file, row=row, column=column)
    found = {}
    for name, keys in SPAN_KEYS.items():
        key = next((k for k in keys if span.get(k) is not None), None)
        if key is None:
            raise DataError(f"a span has no {' or '.join(keys)}", file=file, row=row,
                            column=column)
        found[name] = span[key]
    start, end, label = found["start"], found["end"], str(found["label"])
    if not (type(start) is int and type(end) is int):
        raise DataError(f"span {start!r}-{end!r} ({label}): offsets must be integers",
                        file=file, row=row, column=column)
    if start >= end:
        raise DataError(f"span {start}-{end} ({label}) is reversed or empty: its start must "
                        "come before its end", file=file, row=row, column=column)
    if not 0 <= start < end <= length:
        raise DataError(f"span {start}-{end} ({label}) is outside the text (length "
                        f"{length})", file=file, row=row, column=column)
    return start, end, label
