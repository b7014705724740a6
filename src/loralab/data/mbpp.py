"""MBPP (Mostly Basic Python Problems) code-generation tasks as causal-LM records.

    {"task_id": int, "text", "code", "test_list": [str], "test_setup_code": str,
     "challenge_test_list": [str], "_src": "<file>:<line>"}   plus any other fields of the row

`code`, `test_setup_code` and the tests get "\n" line endings (the upstream file has CRLF inside
its strings). The sanitized MBPP variant's `prompt` stands in for a missing `text`.

The original file holds all 974 tasks; its standard splits go by task_id (MBPP_RANGES):
1-10 are the few-shot prompt examples (`mbpp_prompt_examples`, never a split), 11-510 test,
511-600 validation, 601-974 train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.data.readers import Table
from loralab.errors import DataError

Record = dict[str, Any]
MBPP_RANGES: dict[str, tuple[int, int]] = {
    "prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
TEST_FIELDS = ("test_list", "challenge_test_list")


def is_mbpp_name(path: str | Path) -> bool:
    """True for a JSONL file whose name mentions mbpp (mbpp.jsonl, mbpp_train.jsonl)."""
    name = Path(path).name.lower()
    return "mbpp" in name and name.endswith(".jsonl")


def mbpp_records(table: Table) -> list[Record]:
    """Checked and normalised MBPP records of one file (or hub split)."""
    records = []
    for row, values in table.rows:
        where = {"file": table.source, "row": row}
        text = values.get("text", values.get("prompt"))
        if not isinstance(text, str) or not text.strip():
            raise DataError("no task description (expected a non-empty string)", **where,
                            column="text")
        record = {**values, "task_id": _task_id(values.get("task_id"), where), "text": text,
                  "code": _code(values.get("code", ""), where, "code"),
                  "test_setup_code": _code(values.get("test_setup_code") or "", where,
                                           "test_setup_code")}
        for column in TEST_FIELDS:
            record[column] = _tests(values.get(column), where, column,
                                    required=column == "test_list")
        record["_src"] = f"{table.source}:{row}"
        records.append(record)
    return records


def _task_id(value: Any, where: dict[str, Any]) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DataError(f"task_id {value!r} is not a whole number", **where, column="task_id")
    return value


def unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _code(value: Any, where: dict[str, Any], column: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"expected code as a string, found {type(value).__name__}", **where,
                        column=column)
    return unix_newlines(value)


def _tests(value: Any, where: dict[str, Any], column: str, *, required: bool) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise DataError("expected a list of assert statements (strings)", **where, column=column)
    if required and not value:
        raise DataError("no tests", **where, column=column)
    return [unix_newlines(t) for t in value]


def mbpp_split_of(task_id: int, ranges: dict[str, tuple[int, int]] = MBPP_RANGES) -> str | None:
    """The split ("prompt", "train", "validation", "test") holding `task_id`, None if none."""
    for split, (first, last) in ranges.items():
        if first <= task_id <= last:
            return split
    return None


def split_mbpp(records: list[Record],
               ranges: dict[str, tuple[int, int]] = MBPP_RANGES) -> dict[str, list[Record]]:
    """{"train", "validation", "test"} by task_id (the "prompt" range goes to none of them).

    A task_id outside every range is a DataError: the standard splits would silently drop it.
    """
    splits: dict[str, list[Record]] = {"train": [], "validation": [], "test": []}
    for record in records:
        split = mbpp_split_of(record["task_id"], ranges)
        if split is None:
            file, _, row = record["_src"].rpartition(":")
            spans = ", ".join(f"{name} {a}-{b}" for name, (a, b) in ranges.items())
            raise DataError(f"task_id {record['task_id']} is outside the standard MBPP splits "
                            f"({spans}); give data.validation / data.test to split it yourself",
                            file=file, row=int(row), column="task_id")
        if split in splits:
            splits[split].append(record)
    return splits


def mbpp_prompt_examples(records: list[Record],
                         ranges: dict[str, tuple[int, int]] = MBPP_RANGES) -> list[Record]:
    """The few-shot prompt tasks (task_id 1-10 by default), by task_id.

    `load_splits` leaves them out of every split; read them from the whole file, e.g.
    `mbpp_prompt_examples(read_file(path, cfg, task.records, "train"))`.
    """
    first, last = ranges["prompt"]
    return sorted((r for r in records if first <= r["task_id"] <= last),
                  key=lambda r: r["task_id"])
