"""CoNLL files: one token per line, whitespace-separated columns, a blank line between sentences.

Row numbers (in `_src` and errors) are the 1-based line number of the sentence's first token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.config import ColumnsConfig
from loralab.data.tags import to_bio
from loralab.errors import DataError


def read_conll(path: Path, columns: ColumnsConfig) -> list[dict[str, Any]]:
    """Sentences as {"tokens", "tags", "_src"} with BIO tags (IOB1 input is converted).

    The token is column 0 and the tag the last column unless data.columns.tokens / .tags give
    other column numbers; `-DOCSTART-` lines are skipped.
    """
    tok_idx = _index(columns.tokens, 0, "tokens", path)
    tag_idx = _index(columns.tags, -1, "tags", path)
    need = max(2, *(i + 1 if i >= 0 else -i for i in (tok_idx, tag_idx)))
    source = str(path)
    records: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line_no, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields or fields[0] == "-DOCSTART-":
                    _flush(records, tokens, tags, source, start)
                    tokens, tags = [], []
                    continue
                if len(fields) < need:
                    raise DataError(f"expected at least {need} whitespace-separated columns, "
                                    f"found {len(fields)}", file=source, row=line_no)
                if not tokens:
                    start = line_no
                tokens.append(fields[tok_idx])
                tags.append(fields[tag_idx])
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", file=source) from None
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", file=source) from None
    _flush(records, tokens, tags, source, start)
    if not records:
        raise DataError("no sentences in the file", file=source)
    return records


def _flush(records: list[dict[str, Any]], tokens: list[str], tags: list[str], source: str,
           start: int) -> None:
    if tokens:
        records.append({"tokens": tokens, "tags": to_bio(tags, file=source, row=start),
                        "_src": f"{source}:{start}"})


def _index(value: str | int | None, default: int, name: str, path: Path) -> int:
    if value is None:
        return default
    if isinstance(value, int):
        return value
    if value.lstrip("-").isdigit():
        return int(value)
    raise DataError(f"data.columns.{name} must be a column number for conll files, got "
                    f"{value!r}", file=str(path))
