"""`load_splits`: a DataConfig and a task's RecordSpec in, canonical records per split out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.config import DataConfig
from loralab.data.filters import apply_filter
from loralab.data.formats import FORMATS, file_format
from loralab.data.hub import load_hub_splits
from loralab.data.paths import expand_paths
from loralab.data.spec import RecordSpec
from loralab.data.splits import finish_splits
from loralab.errors import UserError

SPLITS = ("train", "validation", "test")


@dataclass
class LoadedData:
    splits: dict[str, list[dict[str, Any]]]   # after hold-out and max_*_samples
    every_record: list[dict[str, Any]]        # every split before sampling (for label sets)


def load_splits(cfg: DataConfig, spec: RecordSpec) -> dict[str, list[dict[str, Any]]]:
    """The splits of `load_data` (see there)."""
    return load_data(cfg, spec).splits


def load_data(cfg: DataConfig, spec: RecordSpec) -> LoadedData:
    """{"train", "validation"[, "test"]} -> records in the shape `spec` asks for.

    `sentences` records are {"text", "text_pair", "label", "_src"} (labels: str, or float
    with numeric_labels; None only in a test split without labels); `tagged_words` records are
    {"tokens", "tags", "_src"} with BIO tags; `fields` records are the rows' own fields plus
    `_src` (see loralab.data.causal for the squad, mbpp and multiple_choice shapes).
    `_src` is "<file>:<row>" with 1-based data rows: the first row under a CSV/TSV header is
    row 1, JSONL rows are line numbers, JSON/parquet rows are record positions, CoNLL rows are
    the line of the sentence's first token, CLINC/hub rows count within their split, SQuAD rows
    count questions through the file.
    data.filter then keeps the matching records of every split. Without a validation source, a
    seeded data.validation_fraction of train is held out (records sharing a `_group` together).
    """
    for name in cfg.splits:
        if name not in SPLITS:
            raise UserError(f"data.splits: unknown split {name!r}; use train, validation, test")
    if cfg.hub:
        splits = load_hub_splits(cfg, spec)
    elif cfg.train:
        splits = _load_local(cfg, spec)
    else:
        raise UserError("data.train or data.hub is required")
    filtered = apply_filter(splits, cfg.filter)
    return LoadedData(finish_splits(filtered, cfg),
                      [record for split in filtered.values() for record in split])


def _load_local(cfg: DataConfig, spec: RecordSpec) -> dict[str, list[dict[str, Any]]]:
    declared = FORMATS[cfg.format] if cfg.format != "auto" else None
    if declared is not None:
        declared.check(spec)
        if declared.whole is not None:
            return declared.whole(cfg)
    splits = {}
    for split in SPLITS:
        value = getattr(cfg, split)
        if value:
            splits[split] = [rec for path in expand_paths(value, f"data.{split}")
                             for rec in read_file(path, cfg, spec, split)]
    own_splitter = _own_splitter(cfg, spec)
    return own_splitter(splits["train"]) if own_splitter else splits


def _own_splitter(cfg: DataConfig, spec: RecordSpec):
    """The train file's own split rule (MBPP task ids) when data.train alone names it."""
    if cfg.validation or cfg.test or not cfg.train:
        return None
    formats = {file_format(p, cfg, spec).name for p in expand_paths(cfg.train, "data.train")}
    if len(formats) != 1:
        return None
    return FORMATS[formats.pop()].split_itself


def read_file(path: Path, cfg: DataConfig, spec: RecordSpec,
              split: str) -> list[dict[str, Any]]:
    """Records of one file; the format is data.format or, for "auto", the file name's.

    An MBPP file gives all its records here: load_splits splits them by task id.
    """
    fmt = file_format(path, cfg, spec)
    return fmt.read(path, cfg, spec, split)
