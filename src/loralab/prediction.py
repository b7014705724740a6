"""`loralab predict`: read inputs, run the adapter in batches, render one result per input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from loralab.errors import DataError, UserError
from loralab.models.adapter_io import LoadedAdapter
from loralab.training.batches import model_inputs_collator


def read_inputs(texts: list[str], pairs: list[str], file: str | None,
                task: str = "sequence_classification") -> list[dict]:
    if bool(texts) == bool(file):
        raise UserError("give --text (repeatable) or --file, one of the two")
    if pairs and len(pairs) != len(texts):
        raise UserError(f"{len(pairs)} --text-pair for {len(texts)} --text; give one each")
    if texts:
        return [{"text": t, "text_pair": pairs[i] if pairs else None, "_src": f"--text:{i + 1}"}
                for i, t in enumerate(texts)]
    return read_input_file(Path(file), task)


def read_input_file(path: Path, task: str = "sequence_classification") -> list[dict]:
    """A .txt file (one text per line) or any table the data loaders read (text column)."""
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    if path.suffix == ".txt":
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        return [{"text": line, "text_pair": None, "_src": f"{path}:{i}"}
                for i, line in enumerate(lines, start=1) if line.strip()]
    from loralab.config import DataConfig
    from loralab.data.loader import read_file

    if task == "causal_lm":  # rows keep every field, for the prompt template
        return read_file(path, DataConfig(), "causal_lm", "test")
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


def causal_records(loaded: LoadedAdapter, records: list[dict]) -> list[dict]:
    """`--text` is the user's input: it fills a prompt template with a single field, or is the
    prompt itself; `--file` rows keep all their fields for the template."""
    from loralab.tasks.sft_format import template_fields

    template = loaded.config.data.prompt_template
    fields = {f.split(".")[0].split("[")[0] for f in template_fields(template or "")}
    out = []
    for record in records:
        if "text" not in record or set(fields) <= set(record):
            out.append(record)
        elif len(fields) == 1:
            out.append({**record, next(iter(fields)): record["text"]})
        else:
            raise UserError(f"the adapter's prompt template needs the fields "
                            f"{', '.join(sorted(fields))}: give them as columns of --file")
    if not template:
        out = [{**r, "prompt": r.get("prompt", r.get("text"))} for r in out]
    return out


def generate_records(loaded: LoadedAdapter, records: list[dict],
                     batch_size: int) -> Iterator[dict[str, Any]]:
    from loralab.evaluation.generate import Decoding, generate_texts

    records = causal_records(loaded, records)
    fmt = loaded.task.format
    prompts = [fmt.prompt(r, loaded.tokenizer) for r in records]
    decoding = Decoding.from_config(loaded.config.eval, loaded.config.training.seed)
    decoding.batch_size = batch_size
    texts = generate_texts(loaded.model, loaded.tokenizer, prompts, decoding,
                           add_special_tokens=not fmt.is_chat(records))
    for record, text in zip(records, texts):
        shown = {k: v for k, v in record.items()
                 if not k.startswith("_") and k != "prompt" and v is not None}
        yield {**shown, "generated": text}


@torch.no_grad()
def predict_records(loaded: LoadedAdapter, records: list[dict],
                    batch_size: int = 32) -> Iterator[dict[str, Any]]:
    if loaded.task.name == "causal_lm":
        yield from generate_records(loaded, records, batch_size)
        return
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

