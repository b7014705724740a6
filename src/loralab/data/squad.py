"""SQuAD-format extractive QA (v1.1 and v2.0) as causal-LM records, one per question.

    {"id", "title", "context", "question", "answers": [text, ...], "answer": str,
     "_src": "<file>:<n>", "_group": title}

`answers` are the gold answer texts, de-duplicated in order; `answer` is the first of them, or ""
for an unanswerable SQuAD v2 question (`is_impossible`, kept with `answers: []`). `<n>` counts
questions through the whole file, first = 1. `_group` makes the validation hold-out keep one
article's questions on one side: they share passages, so splitting an article leaks answers.
"""

from __future__ import annotations

from typing import Any

from loralab.data.readers import Table
from loralab.errors import DataError

Record = dict[str, Any]
SHAPE = '{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers"}]}]}]}'


def is_squad(data: Any) -> bool:
    """True for parsed JSON shaped like SQuAD: {"data": [{"paragraphs": ...}, ...]}."""
    if not isinstance(data, dict):
        return False
    articles = data.get("data")
    return (isinstance(articles, list) and bool(articles) and isinstance(articles[0], dict)
            and "paragraphs" in articles[0])


def squad_records(data: Any, source: str) -> list[Record]:
    """One record per question of parsed SQuAD JSON; `source` names the file in errors."""
    if not is_squad(data):
        raise DataError(f"expected SQuAD JSON {SHAPE}", file=source)
    records: list[Record] = []
    for a, article in enumerate(data["data"]):
        where = f"data[{a}]"
        article = _object(article, source, where)
        title = _optional_text(article.get("title"), source, f"{where}.title")
        group = title or f"article {a + 1}"
        for p, paragraph in enumerate(_list(article.get("paragraphs"), source,
                                            f"{where}.paragraphs")):
            at = f"{where}.paragraphs[{p}]"
            paragraph = _object(paragraph, source, at)
            context = _optional_text(paragraph.get("context"), source, f"{at}.context")
            for q, qa in enumerate(_list(paragraph.get("qas"), source, f"{at}.qas")):
                row = len(records) + 1
                records.append(_question(qa, source, row, f"{at}.qas[{q}]", title, context,
                                         group))
    if not records:
        raise DataError("the SQuAD file holds no questions", file=source)
    return records


def _question(qa: Any, source: str, row: int, at: str, title: str, context: str,
              group: str) -> Record:
    qa = _object(qa, source, at, row)
    question = _optional_text(qa.get("question"), source, f"{at}.question", row)
    if not question.strip():
        raise DataError("the question is empty", file=source, row=row, column=f"{at}.question")
    if not context.strip():
        raise DataError("the paragraph's context is empty", file=source, row=row,
                        column=f"{at}.context")
    answers = answer_texts(qa.get("answers"), source, row, f"{at}.answers")
    return {"id": str(qa.get("id", row)), "title": title, "context": context,
            "question": question, "answers": answers, "answer": answers[0] if answers else "",
            "_src": f"{source}:{row}", "_group": group}


def squad_flat_records(table: Table) -> list[Record]:
    """Records from flat SQuAD rows (the hub's squad / squad_v2 layout): one row per question
    with `answers` as {"text": [...], "answer_start": [...]} or a list."""
    records = []
    for row, values in table.rows:
        where = {"file": table.source, "row": row}
        for column in ("question", "context"):
            if not _optional_text(values.get(column), table.source, column, row).strip():
                raise DataError(f"no {column}", **where, column=column)
        answers = answer_texts(values.get("answers"), table.source, row, "answers")
        title = _optional_text(values.get("title"), table.source, "title", row)
        records.append({**values, "id": str(values.get("id", row)), "title": title,
                        "answers": answers, "answer": answers[0] if answers else "",
                        "_src": f"{table.source}:{row}", "_group": title or f"row {row}"})
    return records


def answer_texts(value: Any, source: str, row: int, column: str) -> list[str]:
    """Gold answer texts, de-duplicated in order, from [{"text"}, ...], ["text", ...] or
    {"text": [...]}; missing or empty (an unanswerable question) -> []."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = value.get("text", [])
    if not isinstance(value, list):
        raise DataError(f"expected a list of answers, found {type(value).__name__}",
                        file=source, row=row, column=column)
    texts: list[str] = []
    for i, item in enumerate(value):
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise DataError(f'answer {i + 1} has no text (expected {{"text": ...}} or a string)',
                            file=source, row=row, column=column)
        if text not in texts:
            texts.append(text)
    return texts


def _object(value: Any, source: str, column: str, row: int | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"expected an object, found {type(value).__name__} ({SHAPE})",
                        file=source, row=row, column=column)
    return value


def _list(value: Any, source: str, column: str) -> list[Any]:
    if not isinstance(value, list):
        found = "nothing" if value is None else type(value).__name__
        raise DataError(f"expected a list, found {found} ({SHAPE})", file=source, column=column)
    return value


def _optional_text(value: Any, source: str, column: str, row: int | None = None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"expected text, found {type(value).__name__}", file=source, row=row,
                        column=column)
    return value
