"""`load_splits`: a DataConfig and a task's RecordSpec in, canonical records per split out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.config import DataConfig
from loralab.data.causal import AS_IS, read_causal_file
from loralab.data.filters import apply_filter
from loralab.data.formats import FORMATS, file_format
from loralab.data.hub import load_hub_splits
from loralab.data.paths import expand_paths
from loralab.data.readers import infer_format
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
    The files of data.extra_train are then added to the training split as they are.
    """
    filtered = apply_filter(load_source_splits(cfg, spec), cfg.filter)
    splits = finish_splits(filtered, cfg)
    extra = read_extra_train(cfg, spec)
    if extra:
        splits["train"] = splits["train"] + extra
    return LoadedData(splits, [record for split in filtered.values() for record in split]
                      + extra)


def load_source_splits(cfg: DataConfig, spec: RecordSpec) -> dict[str, list[dict[str, Any]]]:
    """The splits as the sources give them (the hub's splits, the files of data.train /
    validation / test, or a file's own split rule: MBPP's task ids), before data.filter,
    the validation hold-out and max_*_samples."""
    for name in cfg.splits:
        if name not in SPLITS:
            raise UserError(f"data.splits: unknown split {name!r}; use train, validation, test")
    if cfg.hub:
        return load_hub_splits(cfg, spec)
    if cfg.train:
        return _load_local(cfg, spec)
    raise UserError("data.train or data.hub is required")


def read_extra_train(cfg: DataConfig, spec: RecordSpec) -> list[dict[str, Any]]:
    """The rows of data.extra_train (e.g. `loralab feedback export` pairs): each file in its
    own shape, whatever data.format / columns / templates say. Prompt/response records are
    marked AS_IS: their own `prompt` + `response` (or `messages`) are the example."""
    records: list[dict[str, Any]] = []
    for value in cfg.extra_train:
        for path in expand_paths(value, "data.extra_train"):
            if spec.kind == "fields":
                rows = read_causal_file(path, infer_format(path), "train")
                records.extend({**row, AS_IS: True} for row in rows)
            else:
                records.extend(read_file(path, DataConfig(), spec, "train"))
    return records


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
