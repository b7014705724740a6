"""Tabular readers: csv, tsv, jsonl, json and parquet files into a `Table` of numbered rows.

Row numbers are 1-based data rows, as a person counts them in the file:
- CSV/TSV with a header: the first row under the header is row 1 (blank lines are skipped and
  not counted); headerless CSV/TSV: the first line is row 1.
- JSONL: the line number (blank lines are skipped but counted).
- JSON list and parquet: the record's position, first record = 1.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.errors import DataError

SUFFIX_FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
    ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet", ".conll": "conll", ".iob": "conll",
    ".bio": "conll",
}
TABULAR_FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")


@dataclass
class Table:
    """Rows of one source: `source` names it in errors, `rows` are (row number, values)."""

    source: str
    columns: list[Any]
    rows: list[tuple[int, dict[Any, Any]]]


def infer_format(path: str | Path) -> str:
    """The data format a file name implies: jsonl, json, csv, tsv, parquet or conll."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise DataError("cannot tell the format from the file name; set data.format to one of "
                        "jsonl, json, csv, tsv, parquet, conll, presidio, clinc, squad, mbpp, "
                        "multiple_choice", file=str(path))
    return SUFFIX_FORMATS[suffix]


def read_table(path: Path, fmt: str, headerless: bool = False) -> Table:
    """Read a tabular file; `headerless` applies to csv/tsv (columns are then 0, 1, ...)."""
    if fmt in ("csv", "tsv"):
        return read_delimited(path, fmt, headerless)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "json":
        return read_json(path)
    if fmt == "parquet":
        return read_parquet(path)
    raise DataError(f"format {fmt!r} is not a table format", file=str(path))


@contextlib.contextmanager
def _large_fields() -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def read_delimited(path: Path, fmt: str, headerless: bool) -> Table:
    """CSV (standard quoting) or TSV (quoting off, as GLUE needs: sentences contain `"`)."""
    source = str(path)
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
    delimiter = "\t" if fmt == "tsv" else ","
    with _large_fields(), _opened(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        try:
            lines = [fields for fields in reader if fields]
        except csv.Error as exc:
            raise DataError(f"not readable as {fmt.upper()} near line {reader.line_num}: {exc}",
                            file=source) from None
    if not lines:
        raise DataError("the file is empty", file=source)
    header: list[Any] = list(range(len(lines[0]))) if headerless else lines[0]
    check_unique_columns(header, source)
    body = lines if headerless else lines[1:]
    if not body:
        raise DataError("no data rows under the header", file=source)
    width = len(header)
    what = "the first row" if headerless else "the header"
    rows = []
    for number, fields in enumerate(body, start=1):
        if len(fields) != width:
            raise DataError(f"expected {width} fields like {what}, found {len(fields)}",
                            file=source, row=number)
        rows.append((number, dict(zip(header, fields, strict=True))))
    return Table(source, header, rows)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Any]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield handle
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                        file=str(path)) from None
    except OSError as exc:  # a read that fails is reported as a read
        raise read_error(path, exc) from None


def read_error(path: Path, exc: OSError) -> DataError:
    return DataError(f"cannot read the file: {exc.strerror or exc}", file=str(path))


def read_jsonl(path: Path) -> Table:
    numbered = []
    with _opened(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                numbered.append((number, json.loads(line, object_pairs_hook=unique_keys)))
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON: {exc.msg}", file=str(path),
                                row=number) from None
            except DuplicateKey as exc:
                raise DataError(f"the field {exc.key!r} appears twice in this object",
                                file=str(path), row=number, column=exc.key) from None
    return table_from_records(str(path), numbered)


def read_json(path: Path) -> Table:
    """A JSON list of records, or an object with the list under "data"."""
    return json_table(load_json(path), str(path))


def json_table(data: Any, source: str) -> Table:
    """The Table of already parsed JSON: a list of records or {"data": [...]}."""
    if isinstance(data, dict):
        if isinstance(data.get("data"), list):
            data = data["data"]
        elif looks_like_clinc(data):
            raise DataError("this looks like a CLINC150 file ({split: [[text, intent], ...]}); "
                            "set data.format: clinc", file=source)
        else:
            keys = ", ".join(list(map(str, data))[:10])
            raise DataError('expected a list of records or {"data": [...]}, found an object '
                            f"with keys {keys}", file=source)
    if not isinstance(data, list):
        raise DataError(f"expected a list of records, found {type(data).__name__}", file=source)
    return table_from_records(source, list(enumerate(data, start=1)))


def load_json(path: Path) -> Any:
    with _opened(path) as handle:
        try:
            return json.load(handle, object_pairs_hook=unique_keys)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg} (line {exc.lineno})",
                            file=str(path)) from None
        except DuplicateKey as exc:
            raise DataError(f"the field {exc.key!r} appears twice in one object",
                            file=str(path), column=exc.key) from None


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object_pairs_hook: a key given twice is an error (json keeps the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def check_unique_columns(columns: list[Any], source: str) -> None:
    seen: set[Any] = set()
    for column in columns:
        if column in seen:
            raise DataError(f"the column {column!r} appears twice in the header",
                            file=source, column=str(column))
        seen.add(column)


def looks_like_clinc(data: dict[str, Any]) -> bool:
    values = list(data.values())
    return bool(values) and all(
        isinstance(v, list) and v and isinstance(v[0], list) and len(v[0]) == 2 for v in values)


def read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"not a readable parquet file: {exc}", file=str(path)) from None
    check_unique_columns(table.column_names, str(path))
    numbered = list(enumerate(table.to_pylist(), start=1))
    return table_from_records(str(path), numbered)


def table_from_records(source: str, numbered: list[tuple[int, Any]]) -> Table:
    """Records that are objects (columns = keys, first seen first) or lists (columns 0, 1, ...)."""
    if not numbered:
        raise DataError("the file holds no records", file=source)
    as_lists = isinstance(numbered[0][1], list)
    columns: dict[Any, None] = {}
    rows = []
    for number, record in numbered:
        if as_lists and isinstance(record, list):
            record = dict(enumerate(record))
        elif as_lists or not isinstance(record, dict):
            expected = "a list" if as_lists else "an object"
            raise DataError(f"expected {expected} like the first record, found "
                            f"{type(record).__name__}", file=source, row=number)
        columns.update(dict.fromkeys(record))
        rows.append((number, record))
    return Table(source, list(columns), rows)
