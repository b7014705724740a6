"""`fields` records (causal LMs): every field of a row as it is, plus `_src`.

data.columns does not apply: prompts are rendered from the fields by data.prompt_template.
Formats with their own record shape: squad (loralab.data.squad), mbpp (loralab.data.mbpp),
multiple_choice (loralab.data.choice). With data.format auto, a `*mbpp*.jsonl` file is read as
mbpp and a `.json` file shaped {"data": [{"paragraphs": ...}]} as squad.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.data.choice import choice_records
from loralab.data.mbpp import mbpp_records
from loralab.data.readers import (
    TABULAR_FORMATS,
    Table,
    infer_format,
    json_table,
    load_json,
    read_table,
)
from loralab.data.squad import is_squad, squad_flat_records, squad_records
from loralab.errors import DataError

Record = dict[str, Any]
# a record that is its own example (data.extra_train): its `prompt` + `response` or
# `messages`, never data.prompt_template / response_template / chat_template
AS_IS = "_as_is"


def read_causal_file(path: Path, fmt: str, split: str, *, sniff: bool = False) -> list[Record]:
    """Records of one file in `fmt` (a table format, squad, mbpp or multiple_choice).

    `sniff` (data.format auto) reads a SQuAD-shaped `.json` file as squad.
    """
    source = str(path)
    table_format = fmt if fmt in TABULAR_FORMATS else infer_format(path)
    if table_format not in TABULAR_FORMATS:
        raise DataError(f"data.format {fmt} needs a jsonl, json, csv, tsv or parquet file, not "
                        f"{table_format}", file=source)
    if table_format == "json":
        data = load_json(path)
        if fmt == "squad" or (sniff and fmt == "json"):
            if is_squad(data):
                return squad_records(data, source)
        table = json_table(data, source)
    else:
        table = read_table(path, table_format)
    return causal_table_records(table, fmt, split)


def causal_table_records(table: Table, fmt: str, split: str) -> list[Record]:
    """Records of a table (a file or a hub split); `fmt` picks the record shape."""
    if fmt == "mbpp":
        return mbpp_records(table)
    if fmt == "multiple_choice":
        return choice_records(table, split)
    if fmt == "squad":
        return squad_flat_records(table)
    return generic_records(table)


def generic_records(table: Table) -> list[Record]:
    """Each row's fields as they are, plus `_src` "<source>:<row>"."""
    unnamed = [c for c in table.columns if not isinstance(c, str)]
    if unnamed:
        raise DataError("rows must be objects with named fields (prompts are filled from field "
                        "names by data.prompt_template), not lists or headerless tables",
                        file=table.source)
    return [{**values, "_src": f"{table.source}:{row}"} for row, values in table.rows]
