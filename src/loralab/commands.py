"""What `loralab train`, `eval` and `predict` do, as plain functions the CLI calls."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from loralab.atomic import check_writable_dir
from loralab.config import (
    apply_override,
    load_config,
    overrides_from,
    set_dotted,
    validate_config,
)
from loralab.config_adapters import with_exported_data
from loralab.errors import UserError
from loralab.summary import summary_line


def run_train(config_path: str, overrides: list[str], output: str | None, *,
              overwrite: bool = False, resume: bool = False, progress: bool = True,
              set_from: list[str] | None = None, data: str | None = None) -> int:
    from loralab.training.recipe import train

    config = load_config(config_path, overrides, set_from=set_from)
    if data:
        config = with_exported_data(config, data)
    if resume and not output:
        raise UserError("--resume needs --output: the run folder to continue")
    if not output and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("give --output when training in several processes (each would "
                        "otherwise name its own time-stamped folder)")
    output = output or f"runs/{config.run_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if config.adapters:
        from loralab.summary import multi_summary_line
        from loralab.training.multi import train_adapters

        metrics = train_adapters(config, output, progress=progress, overwrite=overwrite,
                                 resume=resume)
        print(multi_summary_line(metrics, Path(output)))
        return 0
    metrics = train(config, output, progress=progress, overwrite=overwrite, resume=resume)
    if metrics:  # empty on the other processes of a distributed run
        print(summary_line(metrics, Path(output)))
    return 0


def eval_config(adapter_config: Any, config_path: str | None, overrides: list[str],
                set_from: list[str] | None = None):
    """The adapter's own config, with the data section of --config, --set-from and --set
    overrides on top."""
    raw = adapter_config.model_dump(mode="json")
    if config_path:
        other = load_config(config_path)
        raw["data"] = other.data.model_dump(mode="json")
        raw["model"]["max_length"] = other.model.max_length
    for spec in set_from or []:
        for key, value in overrides_from(spec):
            set_dotted(raw, key, value, source=f"--set-from {spec}: ")
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw)


def run_eval(adapter_path: str | None, config_path: str | None, overrides: list[str],
             output: str | None, split: str, *, progress: bool = True, baseline: bool = False,
             base_model: str | None = None, adapter_name: str | None = None,
             all_adapters: bool = False, set_from: list[str] | None = None) -> int:
    """Score an adapter (or with --model a base model alone) on a split of its data."""
    from loralab.evaluation.eval_run import run_eval as evaluate_split
    from loralab.tasks import load_adapter, load_base

    if adapter_name or all_adapters:
        from loralab.eval_adapters import run_eval_set

        if base_model:
            raise UserError("--model evaluates a base model alone; --adapter / "
                            "--all-adapters evaluate a multi-adapter folder (with --baseline "
                            "for its base model)")
        return run_eval_set(adapter_path, config_path, overrides, output, split,
                            adapter_name=adapter_name, progress=progress, baseline=baseline,
                            set_from=set_from)
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
        loaded = load_base(load_config(config_path, [*overrides, f"model.name={base_model}"],
                                       set_from=set_from))
        config, source = loaded.config, {"base_model": base_model, "split": split}
    else:
        refuse_adapter_set(adapter_path)
        loaded = load_adapter(adapter_path)
        config = eval_config(loaded.config, config_path, overrides, set_from)
        source = {"adapter": str(Path(adapter_path).resolve()), "split": split}
        if baseline and not loaded.task.base_model_answers:
            raise UserError(f"--baseline compares an adapter with its base model answering "
                            f"alone; a {loaded.task.name} base has no trained head (its "
                            "no-LoRA baseline is a trained head: run a grid with baseline: "
                            "true)")
    loaded.task.configure(config)
    records = eval_records(config, split, loaded.task)
    check_judge(config)
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


def refuse_adapter_set(path: str) -> None:
    """A multi-adapter folder needs --adapter NAME (or --all-adapters for eval)."""
    from loralab.tasks import adapter_set_folders

    folders = adapter_set_folders(path)
    if folders:
        raise UserError(f"{path} holds several adapters ({', '.join(folders)}): give "
                        "--adapter NAME")


def check_judge(config: Any) -> None:
    """The judge's API key, before any answer is generated (the endpoint is tried later)."""
    if config.judge is not None:
        from loralab.evaluation.judge import api_key

        api_key(config.judge)


def run_predict(adapter_path: str, texts: list[str], pairs: list[str], file: str | None,
                batch_size: int, *, adapter_name: str | None = None) -> int:
    from loralab.export.folders import is_model_export, load_export
    from loralab.prediction import predict_records, read_inputs
    from loralab.tasks import load_adapter, load_adapter_set

    if adapter_name:
        from loralab.eval_adapters import selected_names

        selected_names(adapter_path, adapter_name, False)
        loaded = load_adapter_set(adapter_path).use(adapter_name)
    elif is_model_export(Path(adapter_path)):  # "test mode" of a merged or ONNX artefact
        loaded = load_export(Path(adapter_path))
    else:
        refuse_adapter_set(adapter_path)
        loaded = load_adapter(adapter_path)
    records = read_inputs(texts, pairs, file, loaded.task)
    for line in predict_records(loaded, records, batch_size):
        print(json.dumps(line, ensure_ascii=False))
    return 0
