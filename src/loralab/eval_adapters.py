"""`loralab eval MULTI --adapter NAME | --all-adapters [--baseline] [--output DIR]`: the adapters
of a multi-adapter folder on their base model, loaded once; `set_adapter` switches between
them (no reload). Each adapter is evaluated on its own data, prompt format and metric suites
(its stored config, with --config / --set-from / --set on top); --baseline also evaluates the
base model (adapter off) on the same examples.

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
from loralab.errors import UserError

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
    from loralab.commands import check_judge, eval_config, eval_records
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
        config = eval_config(loaded.config, config_path, overrides, set_from)
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
