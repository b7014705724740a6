"""Label names ↔ ids, with data errors that point at the record's file and row."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from loralab.errors import DataError


def row_error(record: dict, column: str, message: str) -> DataError:
    """A DataError located at a record's `_src` ("file:row")."""
    src = str(record.get("_src", ""))
    file, _, row = src.rpartition(":")
    if not row.isdigit():
        return DataError(message, file=src or None, column=column)
    return DataError(message, file=file, row=int(row), column=column)


def _sort_key(name: str) -> tuple[int, float | str]:
    try:
        return (0, float(name))
    except ValueError:
        return (1, name)


def infer_label_names(train: list[dict], declared: list[str] | None,
                      num_labels: int | None, key: str = "label") -> list[str]:
    """Declared names, or the sorted distinct values of the training labels."""
    if declared is not None:
        return list(declared)
    seen = sorted({str(r[key]) for r in train if r.get(key) is not None}, key=_sort_key)
    if num_labels is not None:
        if all(n.isdigit() for n in seen) and all(int(n) < num_labels for n in seen):
            return [str(i) for i in range(num_labels)]
        if len(seen) != num_labels:
            raise DataError(f"model.num_labels is {num_labels} but the training data has "
                            f"{len(seen)} distinct labels: {', '.join(seen[:20])}")
    if len(seen) < 2:
        raise DataError(f"the training data has {len(seen)} distinct label(s); "
                        "classification needs at least two")
    return seen


def label_id(record: dict, names: list[str], key: str = "label") -> int:
    """Id of a record's label; an integer index is accepted when names were declared."""
    value = str(record[key])
    try:
        return names.index(value)
    except ValueError:
        pass
    names_are_numbers = any(n.lstrip("-").isdigit() for n in names)
    if value.isdigit() and not names_are_numbers and int(value) < len(names):
        return int(value)  # declared names ("negative", "positive") with 0/1 in the data
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    raise row_error(record, key, f"label {value!r} is not one of the labels ({shown})")


def label_entropy(labels: list[Any]) -> float | None:
    """Cross-entropy of always predicting the labels' frequencies (nats)."""
    if not labels:
        return None
    counts = np.array(list(Counter(labels).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())
