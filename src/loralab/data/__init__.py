"""Data loading: a DataConfig becomes canonical example records per split.

    load_splits(cfg, spec) -> {"train": [...], "validation": [...], ("test": [...])}
    split_words(text) -> [(word, start, end), ...]   the word rule for span data and prediction
    infer_format(path) -> "jsonl" | "json" | "csv" | "tsv" | "parquet" | "conll"
    read_file(path, cfg, spec, split) -> records of one file (split "test": labels optional)
    RecordSpec: the record shape a task asks for (sentences, tagged_words, fields)
    mbpp_prompt_examples(records) -> MBPP's few-shot prompt tasks (task_id 1-10), by task_id

`fields` records (causal LMs) are the rows' own fields plus `_src`; data.format squad, mbpp and
multiple_choice give them a fixed shape (loralab.data.squad, .mbpp, .choice).
"""

from loralab.data.loader import load_splits, read_file
from loralab.data.mbpp import mbpp_prompt_examples
from loralab.data.readers import infer_format
from loralab.data.spans import split_words
from loralab.data.spec import RecordSpec
from loralab.data.tags import to_bio

__all__ = ["RecordSpec", "infer_format", "load_splits", "mbpp_prompt_examples", "read_file",
           "split_words", "to_bio"]
