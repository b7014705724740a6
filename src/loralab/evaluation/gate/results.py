"""Read any loralab results file as one flat mapping of full metric names to numbers.

A full name is `scope.metric`: the metric (a registry name, no dot) follows the last dot and
the scope says where the number comes from. The scopes of each file shape:

- run folder `metrics.json`: `validation.<m>` (its `best`: the saved weights' validation
  metrics), `final.<m>`, `test.<m>`, `base.validation.<m>` (its `trivial_baseline`: the
  majority-class / mean / all-O predictor an encoder must beat) and `run.<key>` for its other
  numbers (`run.train_seconds`, `run.peak_memory_mb`, ...);
- the `metrics.json` of a run of several adapters (`adapters:`): each adapter's run names
  prefixed by the adapter, `code.validation.pass@1`, `code.run.train_seconds` (its base
  numbers as `base.code.validation.<m>`), and `run.<key>` for the whole run's numbers;
- eval `lora_results.json`, `results.json`, `eval_metrics.json`: `<split>.<m>`
  (`validation.pass@1`); a `baseline_results.json` beside `lora_results.json` (the base
  model, adapter off) adds `base.<split>.<m>`;
- grid `best.json`: `<group>.<metric>` (the best configuration's mean) and
  `base.<group>.<metric>` (the no-LoRA baseline's mean), `<group>` being the group's values
  joined by `/` (`minilm/mrpc.f1_binary`);
- a baseline written by `loralab gate --promote`: its `metrics`, as they are;
- any other JSON object (a benchmark stage's metrics): nested keys joined by dots,
  `{"code": {"pass@1": x}, "base": {"code": {"pass@1": y}}}` -> `code.pass@1`,
  `base.code.pass@1`.

Inside the scopes of the known shapes, a nested object (e.g. `f1_per_type`) becomes
`family/group` names, the registry's per-group form: `validation.f1_per_type/PERSON`.
Only numbers count (booleans, strings, lists and nulls are left out). A folder stands for
the one results file it holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralab.errors import UserError

# the names the writers use (training.run_folder, evaluation.causal_report, commands,
# experiments.report); not imported: those layers sit above this one or import torch
RUN_METRICS = "metrics.json"
LORA_RESULTS, BASE_RESULTS = "lora_results.json", "baseline_results.json"
EVAL_RESULTS = ("results.json", "eval_metrics.json")
GRID_BEST = "best.json"
FOLDER_FILES = (RUN_METRICS, LORA_RESULTS, *EVAL_RESULTS, GRID_BEST)
BASELINE_KIND = "loralab.baseline"
MULTI_RUN_KIND = "loralab.multi_adapter_run"   # training.multi
# keys of an eval results file that describe the run, not its numbers
EVAL_SOURCE_KEYS = ("adapter", "base_model", "split", "model", "decoding")


@dataclass
class Results:
    path: Path                       # the results file (or, for a folder, the file inside)
    shape: str                       # run, eval, grid, baseline, flat
    metrics: dict[str, float]
    files: list[Path] = field(default_factory=list)    # every file read, path first
    raw: Any = None                  # the parsed main file

    def inputs(self) -> list[dict[str, str]]:
        return [{"path": str(p.resolve()), "sha256": sha256_file(p)} for p in self.files]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_results_file(path: Path, *, role: str = "results") -> Path:
    """`path` itself, or the one results file a folder holds."""
    if path.is_file():
        return path
    if not path.exists():
        raise UserError(f"{role} {path} does not exist")
    found = [path / name for name in FOLDER_FILES if (path / name).is_file()]
    if not found:
        raise UserError(f"{role} folder {path} holds no results file (looked for "
                        f"{', '.join(FOLDER_FILES)})")
    if len(found) > 1:
        raise UserError(f"{role} folder {path} holds several results files "
                        f"({', '.join(p.name for p in found)}); give the file")
    return found[0]


def read_json(path: Path, role: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{role} {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{role} {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno}") from None


def load_results(path: str | Path, *, role: str = "results") -> Results:
    """The flat metrics of a results file or folder; UserError naming `role` and the path."""
    file = find_results_file(Path(path), role=role)
    raw = read_json(file, role)
    if not isinstance(raw, dict):
        raise UserError(f"{role} {file} holds a JSON {type(raw).__name__}, not an object "
                        "of metrics")
    shape = file_shape(file, raw)
    files = [file]
    if shape == "run":
        metrics = run_metrics(raw)
    elif shape == "multi_run":
        metrics = multi_run_metrics(raw)
    elif shape == "eval":
        metrics = eval_metrics(raw)
        beside = file.with_name(BASE_RESULTS)
        if file.name == LORA_RESULTS and beside.is_file():
            base = read_json(beside, role)
            if isinstance(base, dict):
                files.append(beside)
                metrics.update({f"base.{k}": v for k, v in eval_metrics(base).items()})
    elif shape == "grid":
        metrics = grid_metrics(raw)
    elif shape == "baseline":
        metrics = flatten(raw.get("metrics") or {}, "", ".")
    else:
        metrics = flatten(raw, "", ".")
    if not metrics:
        raise UserError(f"{role} {file} holds no numeric metrics")
    return Results(path=file, shape=shape, metrics=metrics, files=files, raw=raw)


def file_shape(file: Path, raw: dict[str, Any]) -> str:
    if raw.get("kind") == BASELINE_KIND:
        return "baseline"
    if raw.get("kind") == MULTI_RUN_KIND and isinstance(raw.get("adapters"), dict):
        return "multi_run"
    if "metric_for_best" in raw and ("best" in raw or "final" in raw):
        return "run"
    if isinstance(raw.get("groups"), list) and "group_by" in raw:
        return "grid"
    if isinstance(raw.get("split"), str) and "examples" in raw:
        return "eval"
    return "flat"


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def flatten(node: dict[str, Any], prefix: str, sep: str) -> dict[str, float]:
    """Numbers of a nested object under `prefix`; nested keys joined by `sep`."""
    out: dict[str, float] = {}
    for key, value in node.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name, sep))
        elif (n := number(value)) is not None:
            out[name] = n
    return out


def scoped(scope: str, section: Any) -> dict[str, float]:
    """A section's metrics as `scope.<m>`, nested objects as `scope.<m>/<group>`."""
    if not isinstance(section, dict):
        return {}
    out: dict[str, float] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            out.update({f"{scope}.{k}": v for k, v in flatten(value, str(key), "/").items()})
        elif (n := number(value)) is not None:
            out[f"{scope}.{key}"] = n
    return out


def run_metrics(raw: dict[str, Any]) -> dict[str, float]:
    metrics = {**scoped("validation", raw.get("best")), **scoped("final", raw.get("final")),
               **scoped("test", raw.get("test")),
               **scoped("base.validation", raw.get("trivial_baseline"))}
    run = {k: v for k, v in raw.items() if k not in ("best", "final", "test", "trivial_baseline")}
    return {**metrics, **scoped("run", run)}


def multi_run_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """Each adapter's run metrics under its name (`base.` names stay in front)."""
    out: dict[str, float] = {}
    for name, run in raw["adapters"].items():
        if not isinstance(run, dict):
            continue
        for key, value in run_metrics(run).items():
            scoped_key = f"base.{name}.{key[5:]}" if key.startswith("base.") else f"{name}.{key}"
            out[scoped_key] = value
    top = {k: v for k, v in raw.items() if k != "adapters"}
    return {**out, **scoped("run", top)}


def eval_metrics(raw: dict[str, Any]) -> dict[str, float]:
    split = raw.get("split") or "eval"
    return scoped(str(split), {k: v for k, v in raw.items() if k not in EVAL_SOURCE_KEYS})


def grid_metrics(raw: dict[str, Any]) -> dict[str, float]:
    group_by = [str(k) for k in raw.get("group_by") or []]
    out: dict[str, float] = {}
    for entry in raw["groups"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("metric"), str):
            continue
        label = "/".join(str(entry.get(k)) for k in group_by) or "all"
        metric = entry["metric"]
        for prefix, key in ((label, "mean"), (f"base.{label}", "baseline_mean")):
            value = number(entry.get(key))
            if value is not None:
                out[f"{prefix}.{metric}"] = value
    return out
