"""CLINC150 intent files: one JSON object {split: [[text, intent], ...]} holding every split.

Rows are numbered within their split, first = 1; `_src` reads "<file>[<split>]:<row>".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.config import ColumnsConfig, DataConfig
from loralab.data.paths import single_path
from loralab.data.readers import Table, load_json
from loralab.data.records import sentence_records
from loralab.errors import DataError

DEFAULT_KEYS = {"train": "train", "validation": "val", "test": "test"}


def load_clinc_splits(cfg: DataConfig) -> dict[str, list[dict[str, Any]]]:
    """Canonical splits from CLINC files; a split without its own file comes from data.train.

    The source split names default to train / val / test and data.splits overrides them;
    with data.include_oos the matching oos_<name> rows (label "oos") are appended.
    """
    cache: dict[Path, dict[str, Any]] = {}
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, default_key in DEFAULT_KEYS.items():
        own = getattr(cfg, split)
        config_key = f"data.{split}" if own else "data.train"
        path = single_path(own or cfg.train, config_key)
        if path not in cache:
            cache[path] = _load(path)
        data, key = cache[path], cfg.splits.get(split, default_key)
        if key not in data:
            if split == "train" or own or split in cfg.splits:
                raise DataError(f"no split {key!r} in this CLINC file; it has "
                                f"{', '.join(map(repr, data))}", file=str(path))
            continue
        keys = [key] + ([f"oos_{key}"] if cfg.include_oos and f"oos_{key}" in data else [])
        splits[split] = [rec for k in keys for rec in _records(data[k], path, k, split)]
    return splits


def _load(path: Path) -> dict[str, Any]:
    data = load_json(path)
    if not isinstance(data, dict):
        raise DataError("expected a CLINC object {split: [[text, intent], ...]}", file=str(path))
    return data


def _records(items: Any, path: Path, key: str, split: str) -> list[dict[str, Any]]:
    source = f"{path}[{key}]"
    if not isinstance(items, list) or not items:
        raise DataError(f"split {key!r} is not a non-empty list of [text, intent] pairs",
                        file=str(path))
    rows = []
    for number, item in enumerate(items, start=1):
        if not (isinstance(item, list) and len(item) == 2):
            raise DataError("expected a [text, intent] pair", file=source, row=number)
        rows.append((number, {"text": item[0], "label": item[1]}))
    table = Table(source, ["text", "label"], rows)
    return sentence_records(table, ColumnsConfig(), False, split)
