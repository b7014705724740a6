"""`loralab feedback export DB --out pairs.jsonl`: rated responses as training data.

Each stored rating carries its request and response; a rated response becomes rows in the
shape `loralab train` reads with its default columns:

    classification   {"text", "text_pair"?, "label"}     the served label (regression: value)
    token tagging    {"tokens", "tags"}                   the served word tags
    completion       {"prompt", "response"}               model.task causal_lm
    chat completion  {"messages": [..., {"role": "assistant", "content": answer}]}

(one row per choice of a generation). The shape follows what the response holds
(Task.render's output), so no task names are needed here. Rows of several adapters, or
completion and chat rows, are not mixed in one file: give --adapter / --kind to choose.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_text
from loralab.errors import UserError


def classified_row(record: dict[str, Any], result: dict[str, Any]) -> dict[str, Any] | None:
    if "tags" in result and record.get("tokens"):
        return {"tokens": record["tokens"], "tags": result["tags"]}
    answer = result.get("label", result.get("value"))
    if answer is None or not record.get("text"):
        return None
    row = {"text": record["text"]}
    if record.get("text_pair"):
        row["text_pair"] = record["text_pair"]
    row["label"] = answer
    return row


def training_rows(kind: str, request: dict[str, Any], response: dict[str, Any]) -> list[dict]:
    if kind == "classify":
        rows = [classified_row(rec, res) for rec, res in
                zip(request.get("inputs", []), response.get("results", []))]
        return [r for r in rows if r is not None]
    choices = response.get("choices", [])
    if kind == "completion":
        return [{"prompt": request["prompts"][c["prompt_index"]], "response": c["text"]}
                for c in choices]
    if kind == "chat":
        return [{"messages": [*request["messages"], {"role": "assistant",
                                                     "content": c["text"]}]} for c in choices]
    return []


def read_ratings(db: Path, adapter: str | None, rating: str,
                 kind: str | None = None) -> list[sqlite3.Row]:
    if not db.is_file():
        raise UserError(f"feedback database not found: {db}")
    try:
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        connection.row_factory = sqlite3.Row
        query = "SELECT * FROM feedback WHERE rating = ?"
        params: list[Any] = [rating]
        if adapter is not None:
            query += " AND adapter = ?"
            params.append(adapter)
        if kind is not None:
            query += " AND kind = ?"
            params.append(kind)
        rows = connection.execute(query + " ORDER BY id", params).fetchall()
        connection.close()
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{db}: not a loralab feedback database ({exc})") from None
    return rows


def export_feedback(db: Path, out: Path, adapter: str | None = None,
                    rating: str = "up", kind: str | None = None) -> int:
    """Write the rated pairs as JSONL; returns the number of rows written."""
    rows = read_ratings(db, adapter, rating, kind)
    adapters = sorted({str(r["adapter"]) for r in rows})
    if adapter is None and len(adapters) > 1:
        raise UserError(f"{db} holds {rating!r} ratings for {len(adapters)} adapters "
                        f"({', '.join(adapters[:8])}); choose one with --adapter")
    kinds = sorted({r["kind"] for r in rows})
    if len(kinds) > 1:
        raise UserError(f"{db} holds {' and '.join(kinds)} ratings for this adapter, whose "
                        "rows have different shapes; choose one with --kind")
    lines = []
    for row in rows:
        request, response = json.loads(row["request"]), json.loads(row["response"])
        for item in training_rows(row["kind"], request, response):
            lines.append(json.dumps(item, ensure_ascii=False))
    if not lines:
        which = f" for adapter {adapter!r}" if adapter else ""
        raise UserError(f"{db} has no {rating!r} ratings{which} to export")
    atomic_write_text(out, "\n".join(lines) + "\n")
    return len(lines)
