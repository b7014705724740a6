"""`load_splits`: a DataConfig in, canonical records per split out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.config import DataConfig, TaskType
from loralab.data.causal import CAUSAL_FORMATS, causal_format, read_causal_file
from loralab.data.clinc import load_clinc_splits
from loralab.data.conll import read_conll
from loralab.data.filters import apply_filter
from loralab.data.hub import load_hub_splits
from loralab.data.mbpp import split_mbpp
from loralab.data.paths import expand_paths
from loralab.data.readers import infer_format, read_table
from loralab.data.records import build_records
from loralab.data.spans import read_span_table, span_records
from loralab.data.splits import finish_splits
from loralab.errors import DataError, UserError

SPLITS = ("train", "validation", "test")
TOKEN_FORMATS = ("conll", "presidio")


def load_splits(cfg: DataConfig, task: TaskType) -> dict[str, list[dict[str, Any]]]:
    """{"train", "validation"[, "test"]} -> records for `task`.

    Sequence classification / regression records are {"text", "text_pair", "label", "_src"}
    (labels: str for classification, float for regression, None only in a test split without
    labels); token classification records are {"tokens", "tags", "_src"} with BIO tags;
    causal_lm records are the rows' own fields plus `_src` (see loralab.data.causal for the
    squad, mbpp and multiple_choice shapes).
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
        splits = load_hub_splits(cfg, task)
    elif cfg.train:
        splits = _load_local(cfg, task)
    else:
        raise UserError("data.train or data.hub is required")
    return finish_splits(apply_filter(splits, cfg.filter), cfg)


def _load_local(cfg: DataConfig, task: TaskType) -> dict[str, list[dict[str, Any]]]:
    if cfg.format == "clinc":
        if task != "sequence_classification":
            raise UserError("data.format clinc holds intents: it needs model.task "
                            "sequence_classification")
        return load_clinc_splits(cfg)
    splits = {}
    for split in SPLITS:
        value = getattr(cfg, split)
        if value:
            splits[split] = [rec for path in expand_paths(value, f"data.{split}")
                             for rec in read_file(path, cfg, task, split)]
    if _standard_mbpp(cfg, task):
        return split_mbpp(splits["train"])
    return splits


def _standard_mbpp(cfg: DataConfig, task: TaskType) -> bool:
    """True when data.train alone names MBPP file(s): its task_id ranges give the splits."""
    if task != "causal_lm" or cfg.validation or cfg.test or not cfg.train:
        return False
    paths = expand_paths(cfg.train, "data.train")
    return all(causal_format(path, cfg.format) == "mbpp" for path in paths)


def read_file(path: Path, cfg: DataConfig, task: TaskType,
              split: str) -> list[dict[str, Any]]:
    """Records of one file; the format is data.format or, for "auto", the file name's.

    For causal_lm these are all records of the file: an MBPP file is split by load_splits.
    """
    if task == "causal_lm":
        return _read_causal(path, cfg, split)
    if cfg.format in CAUSAL_FORMATS:
        raise UserError(f"data.format {cfg.format} gives prompt/response records: it needs "
                        "model.task causal_lm")
    fmt = _format(path, cfg.format, task)
    if fmt in TOKEN_FORMATS and task != "token_classification":
        raise UserError(f"data.format {fmt} gives word tags: it needs model.task "
                        "token_classification")
    if fmt == "clinc":
        raise UserError("data.format clinc cannot be mixed with other formats")
    if fmt == "conll":
        return read_conll(path, cfg.columns)
    if fmt == "presidio":
        return span_records(read_span_table(path), cfg.columns)
    headerless = any(isinstance(v, int) for v in cfg.columns.model_dump().values())
    table = read_table(path, fmt, headerless)
    if (task == "token_classification" and fmt in ("json", "jsonl")
            and cfg.columns.tokens is None and "spans" in table.columns):
        return span_records(table, cfg.columns)
    return build_records(table, cfg.columns, task, split)


def _read_causal(path: Path, cfg: DataConfig, split: str) -> list[dict[str, Any]]:
    fmt = causal_format(path, cfg.format)
    if fmt in TOKEN_FORMATS or fmt == "clinc":
        raise UserError(f"data.format {fmt} is for encoder tasks, not model.task causal_lm; "
                        "use jsonl, json, csv, tsv, parquet, squad, mbpp or multiple_choice")
    return read_causal_file(path, fmt, split, sniff=cfg.format == "auto")


def _format(path: Path, fmt: str, task: TaskType) -> str:
    if fmt != "auto":
        return fmt
    try:
        return infer_format(path)
    except DataError:
        if task == "token_classification":  # eng.train, *.txt: CoNLL is the usual case
            return "conll"
        raise
