"""The data formats (`data.format`) and what each gives: one table instead of task branches.

Each format says which record kinds it can produce (see loralab.data.spec), how it reads one
file, and whether it reads every split itself (clinc) or splits its own train file (mbpp).
`auto` picks the format from the file name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.config import DataConfig
from loralab.data.causal import causal_table_records, read_causal_file
from loralab.data.clinc import load_clinc_splits
from loralab.data.conll import read_conll
from loralab.data.mbpp import is_mbpp_name, split_mbpp
from loralab.data.readers import TABULAR_FORMATS, Table, infer_format, read_table
from loralab.data.records import sentence_records, token_records
from loralab.data.spans import read_span_table, span_records
from loralab.data.spec import RecordKind, RecordSpec
from loralab.errors import DataError, UserError

Record = dict[str, Any]
ALL_KINDS: tuple[RecordKind, ...] = ("sentences", "tagged_words", "fields")
WORD_TAGS = "words with BIO tags (token classification records)"
PROMPTS = "prompt/response records (causal LM records)"


@dataclass(frozen=True)
class DataFormat:
    name: str
    gives: str                                    # for messages: "word tags", "intents", ...
    kinds: tuple[RecordKind, ...]
    read: Callable[[Path, DataConfig, RecordSpec, str], list[Record]] | None = None
    whole: Callable[[DataConfig], dict[str, list[Record]]] | None = None
    split_itself: Callable[[list[Record]], dict[str, list[Record]]] | None = None
    numeric_labels: bool = True                   # can give regression labels

    def check(self, spec: RecordSpec) -> None:
        """Refuse a format that cannot give the task's records, naming both."""
        if spec.kind not in self.kinds or (spec.numeric_labels and not self.numeric_labels):
            raise UserError(f"data.format {self.name} gives {self.gives}: model.task "
                            f"{spec.task} needs {spec.describe()}")


def table_records(table: Table, cfg: DataConfig, spec: RecordSpec, split: str) -> list[Record]:
    """Records of a table (a file or a hub split) in the shape `spec` asks for."""
    if spec.kind == "fields":
        fmt = cfg.format if cfg.format in FIELD_FORMATS else "auto"
        return causal_table_records(table, fmt, split)
    if spec.kind == "tagged_words":
        if cfg.columns.tokens is None and "spans" in table.columns:
            return span_records(table, cfg.columns)
        return token_records(table, cfg.columns)
    return sentence_records(table, cfg.columns, spec.numeric_labels, split)


def _read_table_file(path: Path, cfg: DataConfig, spec: RecordSpec, split: str) -> list[Record]:
    fmt = cfg.format if cfg.format != "auto" else infer_format(path)
    if spec.kind == "fields":
        return read_causal_file(path, fmt, split, sniff=cfg.format == "auto")
    headerless = any(isinstance(v, int) for v in cfg.columns.model_dump().values())
    return table_records(read_table(path, fmt, headerless), cfg, spec, split)


def _read_fields_file(path: Path, cfg: DataConfig, spec: RecordSpec, split: str) -> list[Record]:
    fmt = cfg.format if cfg.format != "auto" else "mbpp"  # auto only picks mbpp by name
    return read_causal_file(path, fmt, split, sniff=cfg.format == "auto")


def _read_conll(path: Path, cfg: DataConfig, spec: RecordSpec, split: str) -> list[Record]:
    return read_conll(path, cfg.columns)


def _read_presidio(path: Path, cfg: DataConfig, spec: RecordSpec, split: str) -> list[Record]:
    return span_records(read_span_table(path), cfg.columns)


FORMATS: dict[str, DataFormat] = {
    **{name: DataFormat(name, "table rows", ALL_KINDS, _read_table_file)
       for name in TABULAR_FORMATS},
    "conll": DataFormat("conll", WORD_TAGS, ("tagged_words",), _read_conll),
    "presidio": DataFormat("presidio", WORD_TAGS, ("tagged_words",), _read_presidio),
    "clinc": DataFormat("clinc", "intents (sequence classification records)", ("sentences",),
                        whole=load_clinc_splits, numeric_labels=False),
    "squad": DataFormat("squad", PROMPTS, ("fields",), _read_fields_file),
    "mbpp": DataFormat("mbpp", PROMPTS, ("fields",), _read_fields_file,
                       split_itself=split_mbpp),
    "multiple_choice": DataFormat("multiple_choice", PROMPTS, ("fields",), _read_fields_file),
}
FIELD_FORMATS = ("squad", "mbpp", "multiple_choice")


def file_format(path: Path, cfg: DataConfig, spec: RecordSpec) -> DataFormat:
    """data.format, or for `auto` the format the file name implies (`*mbpp*.jsonl` is mbpp
    for prompt/response records; a word-tag file without a known suffix is CoNLL)."""
    if cfg.format != "auto":
        fmt = FORMATS[cfg.format]
    elif spec.kind == "fields" and is_mbpp_name(path):
        fmt = FORMATS["mbpp"]
    else:
        try:
            fmt = FORMATS[infer_format(path)]
        except DataError:
            if spec.kind != "tagged_words":  # eng.train, *.txt: CoNLL is the usual case
                raise
            fmt = FORMATS["conll"]
    fmt.check(spec)
    if fmt.whole is not None:
        raise UserError(f"data.format {fmt.name} cannot be mixed with other formats")
    return fmt
