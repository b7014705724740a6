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


def run_eval(adapter_path: str | None, config_path: str | None, overrides: list[str],
             output: str | None, split: str, *, progress: bool = True, baseline: bool = False,
             base_model: str | None = None) -> int:
    """Score an adapter (or with --model a base model alone) on a split of its data."""
    from loralab.models.adapter_io import load_adapter

    if bool(adapter_path) == bool(base_model):
        raise UserError("give an adapter folder, or --model BASE to evaluate a base model")
    if base_model:
        return run_base_eval(base_model, config_path, overrides, output, split, progress)
    loaded = load_adapter(adapter_path)
    config = eval_config(loaded.config, config_path, overrides)
    records = eval_records(config, split, loaded.task)
    if loaded.task.name == "causal_lm":
        from loralab.evaluation.causal_report import run_causal_eval

        loaded.task.configure(config)
        source = {"adapter": str(Path(adapter_path).resolve()), "split": split}
        result = run_causal_eval(loaded.model, loaded.tokenizer, loaded.task, records, config,
                                 baseline=baseline, has_adapter=True,
                                 output=Path(output) if output else None, progress=progress,
                                 source=source)
        print(json.dumps(result))
        return 0
    if baseline:
        raise UserError("--baseline compares a causal LM with its base model; an encoder's "
                        "no-LoRA baseline is a trained head: run a grid with baseline: true")
    return encoder_eval(loaded, config, records, adapter_path, output, split, progress)


def eval_records(config, split: str, task) -> list[dict[str, Any]]:
    from loralab.data import load_splits
    from loralab.data.splits import sample

    records = load_splits(config.data, config.model.task).get(split)
    if not records:
        raise UserError(f"the data has no {split!r} split; choose --split or set data.{split}")
    if split == "train":  # load_splits caps validation/test; `eval --split train` obeys it too
        records = sample(records, config.data.max_eval_samples, config.data.split_seed)
    if not all(task.has_gold(r) for r in records):
        raise UserError(f"the {split!r} split has no labels to evaluate against; use "
                        "`loralab predict` for unlabelled data")
    return records


def encoder_eval(loaded, config, records, adapter_path: str, output: str | None, split: str,
                 progress: bool) -> int:
    from loralab.evaluation.evaluate import evaluate

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


def run_base_eval(base_model: str, config_path: str | None, overrides: list[str],
                  output: str | None, split: str, progress: bool) -> int:
    """`loralab eval --model BASE --config CFG`: a causal LM as it is, no adapter."""
    from loralab.evaluation.causal_report import run_causal_eval
    from loralab.models.causal import for_inference, load_causal_model, load_causal_tokenizer
    from loralab.tasks import get_task

    if not config_path:
        raise UserError("--model needs --config: the config whose data, prompt format and "
                        "metrics to use")
    config = load_config(config_path, [*overrides, f"model.name={base_model}"])
    if config.model.task != "causal_lm":
        raise UserError("--model evaluates a causal LM as it is; for encoders evaluate an "
                        "adapter folder")
    task = get_task("causal_lm", config)
    records = eval_records(config, split, task)
    tokenizer = load_causal_tokenizer(config)
    model = for_inference(load_causal_model(config), config)
    result = run_causal_eval(model, tokenizer, task, records, config, baseline=False,
                             has_adapter=False, output=Path(output) if output else None,
                             progress=progress, source={"base_model": base_model,
                                                        "split": split})
    print(json.dumps(result))
    return 0


def run_predict(adapter_path: str, texts: list[str], pairs: list[str], file: str | None,
                batch_size: int) -> int:
    from loralab.export.folders import is_model_export, load_export
    from loralab.models.adapter_io import load_adapter
    from loralab.prediction import predict_records, read_inputs

    # a merged or ONNX export predicts through the same code ("test mode" of the artefact)
    path = Path(adapter_path)
    loaded = load_export(path) if is_model_export(path) else load_adapter(path)
    records = read_inputs(texts, pairs, file, loaded.task.name)
    for line in predict_records(loaded, records, batch_size):
        print(json.dumps(line, ensure_ascii=False))
    return 0
