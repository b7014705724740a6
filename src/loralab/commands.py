"""What `loralab train`, `eval` and `predict` do, as plain functions the CLI calls."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json
from loralab.config import apply_override, load_config, validate_config
from loralab.errors import UserError
from loralab.summary import summary_line


def run_train(config_path: str, overrides: list[str], output: str | None, *,
              overwrite: bool = False, resume: bool = False, progress: bool = True) -> int:
    from loralab.training.recipe import train

    config = load_config(config_path, overrides)
    if resume and not output:
        raise UserError("--resume needs --output: the run folder to continue")
    output = output or f"runs/{config.run_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    metrics = train(config, output, progress=progress, overwrite=overwrite, resume=resume)
    print(summary_line(metrics, Path(output)))
    return 0


def eval_config(adapter_config: Any, config_path: str | None, overrides: list[str]):
    """The adapter's own config, with the data section of --config and --set overrides on top."""
    raw = adapter_config.model_dump(mode="json")
    if config_path:
        other = load_config(config_path)
        raw["data"] = other.data.model_dump(mode="json")
        raw["model"]["max_length"] = other.model.max_length
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw)


def run_eval(adapter_path: str, config_path: str | None, overrides: list[str],
             output: str | None, split: str, *, progress: bool = True) -> int:
    from loralab.data import load_splits
    from loralab.data.splits import sample
    from loralab.evaluation.evaluate import evaluate
    from loralab.models.adapter_io import load_adapter
    from loralab.training.recipe import has_gold

    loaded = load_adapter(adapter_path)
    config = eval_config(loaded.config, config_path, overrides)
    records = load_splits(config.data, config.model.task).get(split)
    if not records:
        raise UserError(f"the data has no {split!r} split; choose --split or set data.{split}")
    if split == "train":  # load_splits caps validation/test; `eval --split train` obeys it too
        records = sample(records, config.data.max_eval_samples, config.data.split_seed)
    if not all(has_gold(r) for r in records):
        raise UserError(f"the {split!r} split has no labels to evaluate against; use "
                        "`loralab predict` for unlabelled data")
    features = loaded.task.encode(records, loaded.tokenizer, loaded.labels,
                                  config.model.max_length)
    metrics = evaluate(loaded.model, loaded.task, features, loaded.labels, loaded.tokenizer,
                       config.training.eval_batch_size, progress=progress, desc=split)
    result = {"adapter": str(Path(adapter_path).resolve()), "split": split,
              "examples": len(features), **metrics}
    if output:
        atomic_write_json(Path(output) / "eval_metrics.json", result)
    print(json.dumps(result))
    return 0


def run_predict(adapter_path: str, texts: list[str], pairs: list[str], file: str | None,
                batch_size: int) -> int:
    from loralab.models.adapter_io import load_adapter
    from loralab.prediction import predict_records, read_inputs

    records = read_inputs(texts, pairs, file)
    loaded = load_adapter(adapter_path)
    for line in predict_records(loaded, records, batch_size):
        print(json.dumps(line, ensure_ascii=False))
    return 0
