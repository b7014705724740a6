"""What `loralab train`, `eval` and `predict` do, as plain functions the CLI calls."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from loralab.atomic import check_writable_dir
from loralab.config import apply_override, load_config, validate_config
from loralab.errors import UserError
from loralab.summary import summary_line


def run_train(config_path: str, overrides: list[str], output: str | None, *,
              overwrite: bool = False, resume: bool = False, progress: bool = True) -> int:
    from loralab.training.recipe import train

    config = load_config(config_path, overrides)
    if resume and not output:
        raise UserError("--resume needs --output: the run folder to continue")
    if not output and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("give --output when training in several processes (each would "
                        "otherwise name its own time-stamped folder)")
    output = output or f"runs/{config.run_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    metrics = train(config, output, progress=progress, overwrite=overwrite, resume=resume)
    if metrics:  # empty on the other processes of a distributed run
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
    from loralab.evaluation.eval_run import run_eval as evaluate_split
    from loralab.tasks import load_adapter, load_base

    if bool(adapter_path) == bool(base_model):
        raise UserError("give an adapter folder, or --model BASE to evaluate a base model")
    if output:
        check_writable_dir(output)  # before the evaluation is spent
    if base_model:
        if baseline:
            raise UserError("--baseline compares an adapter with its base model; --model "
                            "already evaluates the base model alone")
        if not config_path:
            raise UserError("--model needs --config: the config whose data, prompt format and "
                            "metrics to use")
        loaded = load_base(load_config(config_path, [*overrides, f"model.name={base_model}"]))
        config, source = loaded.config, {"base_model": base_model, "split": split}
    else:
        loaded = load_adapter(adapter_path)
        config = eval_config(loaded.config, config_path, overrides)
        source = {"adapter": str(Path(adapter_path).resolve()), "split": split}
        if baseline and not loaded.task.base_model_answers:
            raise UserError(f"--baseline compares an adapter with its base model answering "
                            f"alone; a {loaded.task.name} base has no trained head (its "
                            "no-LoRA baseline is a trained head: run a grid with baseline: "
                            "true)")
    loaded.task.configure(config)
    records = eval_records(config, split, loaded.task)
    result = evaluate_split(loaded.model, loaded.tokenizer, loaded.task, records, config,
                            labels=loaded.labels, baseline=baseline,
                            has_adapter=loaded.path is not None,
                            output=Path(output) if output else None, progress=progress,
                            source=source)
    print(json.dumps(result))
    return 0


def eval_records(config, split: str, task) -> list[dict[str, Any]]:
    from loralab.data import load_splits
    from loralab.data.splits import sample

    records = load_splits(config.data, task.records).get(split)
    if not records:
        raise UserError(f"the data has no {split!r} split; choose --split or set data.{split}")
    if split == "train":  # load_splits caps validation/test; `eval --split train` obeys it too
        records = sample(records, config.data.max_eval_samples, config.data.split_seed)
    if not all(task.has_gold(r) for r in records):
        raise UserError(f"the {split!r} split has no labels to evaluate against; use "
                        "`loralab predict` for unlabelled data")
    return records


def run_predict(adapter_path: str, texts: list[str], pairs: list[str], file: str | None,
                batch_size: int) -> int:
    from loralab.export.folders import is_model_export, load_export
    from loralab.prediction import predict_records, read_inputs
    from loralab.tasks import load_adapter

    # a merged or ONNX export predicts through the same code ("test mode" of the artefact)
    path = Path(adapter_path)
    loaded = load_export(path) if is_model_export(path) else load_adapter(path)
    records = read_inputs(texts, pairs, file, loaded.task)
    for line in predict_records(loaded, records, batch_size):
        print(json.dumps(line, ensure_ascii=False))
    return 0
