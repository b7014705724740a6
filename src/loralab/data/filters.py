"""`data.filter`: keep only the records whose fields have the wanted values, in every split.

    data.filter: {category: biology}            field equals the value
    data.filter: {category: [biology, law]}     field is one of the values

Values compare as written in the file or as text, so `{difficulty: 3}` matches "3" in a CSV and
`{flag: true}` matches "true"; numbers match 3 == 3.0.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from loralab.errors import DataError

Records = list[dict[str, Any]]


def apply_filter(splits: dict[str, Records], wanted: dict[str, Any]) -> dict[str, Records]:
    """`splits` with only the matching records; an unknown field or a filter that empties the
    train or validation split is a DataError."""
    if not wanted:
        return splits
    check_fields(splits, wanted)
    allowed = {field: _allowed(value) for field, value in wanted.items()}
    out = {}
    for split, records in splits.items():
        kept = [r for r in records if all(_canon(r.get(f)) in allowed[f] for f in allowed)]
        if records and not kept and split != "test":
            raise DataError(f"data.filter {_shown(wanted)} keeps none of the {len(records)} "
                            f"{split} rows; {_values_seen(records, wanted)}")
        out[split] = kept
    return out


def check_fields(splits: dict[str, Records], wanted: dict[str, Any]) -> None:
    fields: dict[str, None] = {}
    for records in splits.values():
        for record in records:
            fields.update(dict.fromkeys(record))
    for field in wanted:
        if field not in fields:
            names = ", ".join(f for f in fields if not str(f).startswith("_")) or "(none)"
            raise DataError(f"data.filter: no record has the field {field!r}; the records' "
                            f"fields are: {names}")


def _allowed(value: Any) -> set[Any]:
    values = value if isinstance(value, (list, tuple, set)) else [value]
    return {_canon(v) for v in values}


def _canon(value: Any) -> Any:
    """A hashable comparison key: numbers and their text agree, booleans read true/false."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    if value is None:
        return None
    return repr(value)


def _shown(wanted: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in wanted.items()) + "}"


def _values_seen(records: Records, wanted: dict[str, Any]) -> str:
    """The commonest values of the filtered fields, to show what would match."""
    parts = []
    for field in wanted:
        counts = Counter(_canon(r.get(field)) for r in records)
        top = ", ".join(f"{v!r} ({n})" for v, n in counts.most_common(8))
        more = f", ... ({len(counts) - 8} more)" if len(counts) > 8 else ""
        parts.append(f"{field} values there: {top}{more}")
    return "; ".join(parts)
