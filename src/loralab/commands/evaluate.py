"""`loralab eval`: an adapter (or with --model a base causal LM alone) scored on a split of
its data, and with --adapter NAME / --all-adapters the adapters of a multi-adapter folder on
their base model, loaded once (`set_adapter` switches between them, no reload). Each adapter
is evaluated on its own data, prompt format and metric suites (its stored config, with
--config / --set-from / --set on top); --baseline also evaluates the base model (adapter off)
on the same examples.

With --all-adapters and --output, DIR/<adapter>/ holds each adapter's usual eval files and
DIR/metrics.json all their numbers in one flat object, named for `loralab gate`:

    {"code.test.pass@1": 0.12, "base.code.test.pass@1": 0.05,
     "docstring.test.rougeL": 0.31, "base.docstring.test.rougeL": 0.22, ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_json, check_writable_dir
from loralab.config import (
    apply_override,
    load_config,
    overrides_from,
    set_dotted,
    validate_config,
)
from loralab.errors import UserError


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
    from loralab.tasks.loading import read_adapter_metadata

    if adapter_name or all_adapters:
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
        config = check_constraint(load_config(
            config_path, [*overrides, f"model.name={base_model}"], set_from=set_from))
        loaded = load_base(config)
        source = {"base_model": base_model, "split": split}
    else:
        refuse_adapter_set(adapter_path)
        stored, _, _ = read_adapter_metadata(adapter_path)
        config = check_constraint(eval_config(stored, config_path, overrides, set_from))
        loaded = load_adapter(adapter_path, config)
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

    if not (config.data.train or config.data.hub or getattr(config.data, split, None)):
        raise UserError(f"the adapter's config names no data to evaluate on (a plain PEFT "
                        f"folder records none): give --config with a data section, or --set "
                        f"data.{split}=FILE")

    records = load_splits(config.data, task.records).get(split)
    if not records:
        raise UserError(f"the data has no {split!r} split; choose --split or set data.{split}")
    if split == "train":  # load_splits caps validation/test; `eval --split train` obeys it too
        records = sample(records, config.data.max_eval_samples, config.data.split_seed)
    if not all(task.has_gold(r) for r in records):
        raise UserError(f"the {split!r} split has no labels to evaluate against; use "
                        "`loralab predict` for unlabelled data")
    return records


def check_constraint(config: Any) -> Any:
    """eval.constrain's schema file and grammar engine, checked before any model loads."""
    from loralab.models.grammar import constraint_spec

    constraint_spec(config)
    return config


def refuse_adapter_set(path: str) -> None:
    """A multi-adapter folder needs --adapter NAME (or --all-adapters for eval)."""
    from loralab.tasks import adapter_set_folders

    folders = adapter_set_folders(path)
    if folders:
        first = next(iter(folders))
        what = (f"holds {len(folders)} adapters ({', '.join(folders)})" if len(folders) > 1
                else f"is not an adapter folder but holds one, {first}")
        raise UserError(f"{path} {what}: give --adapter NAME, or the adapter folder itself "
                        f"({folders[first]})")


def check_judge(config: Any) -> None:
    """The judge's API key, before any answer is generated (the endpoint is tried later)."""
    if config.judge is not None:
        from loralab.evaluation.judge import api_key

        api_key(config.judge)


# --------------------------------------------------------------- multi-adapter folders

FLAT_METRICS = "metrics.json"


def selected_names(path: str | None, adapter_name: str | None,
                   all_adapters: bool) -> list[str]:
    """The adapters to evaluate, checked against the folder before anything loads."""
    from loralab.tasks import adapter_set_folders

    if adapter_name and all_adapters:
        raise UserError("give --adapter NAME or --all-adapters, not both")
    if not path:
        raise UserError("give the multi-adapter folder (or the run folder holding it)")
    folders = adapter_set_folders(path)
    if not folders:
        raise UserError(f"{path} is not a multi-adapter folder (a run of a config with "
                        "adapters:, its adapters/ folder, or a folder of adapter folders)")
    if adapter_name and adapter_name not in folders:
        raise UserError(f"{path} has no adapter {adapter_name!r}; it holds: "
                        f"{', '.join(folders)}")
    return list(folders) if all_adapters else [str(adapter_name)]


def run_eval_set(path: str | None, config_path: str | None, overrides: list[str],
                 output: str | None, split: str, *, adapter_name: str | None,
                 progress: bool, baseline: bool, set_from: list[str] | None) -> int:
    from loralab.evaluation.eval_run import run_eval
    from loralab.tasks import load_adapter_set

    all_adapters = adapter_name is None
    names = selected_names(path, adapter_name, all_adapters)
    if output:
        check_writable_dir(output)
    adapters = load_adapter_set(str(path))
    plans = []
    for name in names:  # every adapter's config and records before the first evaluation
        loaded = adapters.adapters[name]
        config = check_constraint(eval_config(loaded.config, config_path, overrides, set_from))
        loaded.task.configure(config)
        plans.append((name, loaded, config, eval_records(config, split, loaded.task)))
        check_judge(config)
    results: dict[str, Any] = {}
    for name, loaded, config, records in plans:
        adapters.use(name)
        out = Path(output) / name if output and all_adapters else (
            Path(output) if output else None)
        results[name] = run_eval(
            adapters.model, adapters.tokenizer, loaded.task, records, config,
            labels=loaded.labels, baseline=baseline, has_adapter=True, output=out,
            progress=progress,
            source={"adapter": str(loaded.path.resolve()), "adapter_name": name,
                    "split": split})
    if output and all_adapters:
        atomic_write_json(Path(output) / FLAT_METRICS, flat_metrics(results, split))
    print(json.dumps(results if all_adapters else results[names[0]]))
    return 0


def numbers(result: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in result.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def flat_metrics(results: dict[str, Any], split: str) -> dict[str, float]:
    """`<adapter>.<split>.<metric>` and, with --baseline, `base.<adapter>.<split>.<metric>`."""
    flat: dict[str, float] = {}
    for name, result in results.items():
        adapter, base = (result["lora"], result["baseline"]) if "lora" in result \
            else (result, None)
        flat.update({f"{name}.{split}.{k}": v for k, v in numbers(adapter).items()})
        if base is not None:
            flat.update({f"base.{name}.{split}.{k}": v for k, v in numbers(base).items()})
    return flat
