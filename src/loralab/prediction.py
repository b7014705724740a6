"""`loralab predict`: read inputs, run the adapter in batches, render one result per input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from loralab.errors import DataError, UserError
from loralab.models.adapter_io import LoadedAdapter
from loralab.training.batches import model_inputs_collator


def read_inputs(texts: list[str], pairs: list[str], file: str | None) -> list[dict]:
    if bool(texts) == bool(file):
        raise UserError("give --text (repeatable) or --file, one of the two")
    if pairs and len(pairs) != len(texts):
        raise UserError(f"{len(pairs)} --text-pair for {len(texts)} --text; give one each")
    if texts:
        return [{"text": t, "text_pair": pairs[i] if pairs else None, "_src": f"--text:{i + 1}"}
                for i, t in enumerate(texts)]
    return read_input_file(Path(file))


def read_input_file(path: Path) -> list[dict]:
    """A .txt file (one text per line) or any table the data loaders read (text column)."""
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    if path.suffix == ".txt":
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        return [{"text": line, "text_pair": None, "_src": f"{path}:{i}"}
                for i, line in enumerate(lines, start=1) if line.strip()]
    from loralab.config import DataConfig
    from loralab.data.loader import read_file

    return read_file(path, DataConfig(), "sequence_classification", "test")


def to_task_records(loaded: LoadedAdapter, records: list[dict]) -> list[dict]:
    """Token tasks predict on words: split raw text with the same rule as the training data."""
    if loaded.task.name != "token_classification":
        return records
    from loralab.data import split_words

    out = []
    for record in records:
        if record.get("tokens"):
            out.append(record)
            continue
        words = split_words(record["text"])
        out.append({**record, "tokens": [w for w, _, _ in words], "_words": words})
    return out


@torch.no_grad()
def predict_records(loaded: LoadedAdapter, records: list[dict],
                    batch_size: int = 32) -> Iterator[dict[str, Any]]:
    records = to_task_records(loaded, records)
    task, tokenizer = loaded.task, loaded.tokenizer
    max_length = loaded.config.model.max_length
    collate = model_inputs_collator(task.collator(tokenizer))
    device = next(loaded.model.parameters()).device
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        features = task.encode(chunk, tokenizer, loaded.labels, max_length)
        batch = collate(features)
        batch.pop("labels", None)
        logits = loaded.model(**{k: v.to(device) for k, v in batch.items()}).logits
        for i, (record, feature) in enumerate(zip(chunk, features)):
            shown = {k: v for k, v in record.items() if k in ("text", "text_pair") and v}
            yield {**shown, **task.render(logits[i], record, feature, loaded.labels)}

