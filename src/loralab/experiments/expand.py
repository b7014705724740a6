"""Grid file -> the list of runs: products, zips, variants, models x datasets, seeds, excludes
and the no-LoRA baselines, each validated before anything runs."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralab.config import (
    Config,
    LoraConfig,
    apply_override,
    flatten,
    load_config,
    resolve_data_paths,
    resolve_path,
    set_dotted,
    validate_config,
)
from loralab.data.paths import expand_paths
from loralab.errors import ConfigError
from loralab.experiments.grid_spec import GridSpec, load_grid_file
from loralab.experiments.naming import dataset_label, model_label, run_id, run_name, slug

Axis = list[tuple[str | None, dict[str, Any]]]   # (label, dotted overrides) per value


@dataclass
class PlannedRun:
    id: str
    name: str
    model: str
    dataset: str
    seed: int
    baseline: bool
    config: Config
    params: dict[str, Any] = field(default_factory=dict)   # keys that vary over the grid
    changes: dict[str, Any] = field(default_factory=dict)  # differences from the base config

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.id}"

    @property
    def variant(self) -> str:
        return self.name.rpartition("-s")[0]


@dataclass
class GridPlan:
    source: Path
    spec: GridSpec
    base: Config
    runs: list[PlannedRun]
    notes: list[str] = field(default_factory=list)


def build_plan(path: str | Path, overrides: list[str] | None = None, *,
               smoke: bool = False) -> GridPlan:
    """Expand and validate every run of the grid; all invalid values are reported at once."""
    path = Path(path)
    spec, inline_base, grid_dir = load_grid_file(path)
    base = load_base(spec, inline_base, grid_dir)
    base_raw = base.model_dump(mode="json")
    extra = list(overrides or [])
    smoke_keys = spec.smoke if smoke else {}
    models, datasets = model_axis(spec, base), dataset_axis(spec, base)
    check_disjoint_axes(spec, models, datasets)
    drafts, errors = [], []
    for (m_label, m_set), (d_label, d_set) in itertools.product(models, datasets):
        for seed in spec.seeds or [base.training.seed]:
            shared = {**spec.set, **m_set, **d_set, "training.seed": seed}
            for combo in lora_combinations(spec):
                drafts.append(draft(base_raw, {**shared, **combo}, extra, smoke_keys, grid_dir,
                                    (m_label, d_label, False), errors))
            if spec.baseline:
                drafts.append(draft(base_raw, shared, extra, smoke_keys, grid_dir,
                                    (m_label, d_label, True), errors))
    if errors:
        unique = list(dict.fromkeys(errors))
        raise ConfigError(f"{path}: {len(unique)} invalid run(s) in the grid: "
                          + " | ".join(unique))
    drafts = [d for d in drafts if not excluded(d, spec.exclude)]
    labelled = {k for _, keys in models + datasets for k in keys}
    return GridPlan(path, spec, base, finish_runs(drafts, base, labelled))


def check_sources(plan: GridPlan) -> None:
    """Every run's data files and local model folder exist, before any run folder is made
    (the full checks of data and model happen in each run, before it writes anything)."""
    seen: set[tuple[str, str]] = set()
    for run in plan.runs:
        data, name = run.config.data, run.config.model.name
        for key in ("train", "validation", "test"):
            value = getattr(data, key)
            if value and (key, value) not in seen:
                seen.add((key, value))
                expand_paths(value, f"data.{key}")
        if name.startswith("/") and not Path(name).exists():
            raise ConfigError(f"{plan.source}: model.name {name}: no such folder")


def load_base(spec: GridSpec, inline_base: dict[str, Any], grid_dir: Path) -> Config:
    if spec.base:
        return load_config(resolve_path(spec.base, grid_dir))
    config = validate_config(inline_base)
    resolve_data_paths(config, grid_dir)
    return config


def entry_overrides(entry: dict[str, Any], where: str) -> tuple[str | None, dict[str, Any]]:
    """A models/datasets/variants entry: an optional `name` label, dotted keys or sections."""
    entry = dict(entry)
    label = entry.pop("name", None)
    if label is not None and not isinstance(label, str):
        raise ConfigError(f"{where}.name must be a string label (got {label!r})")
    return label, flatten(entry)


def model_axis(spec: GridSpec, base: Config) -> Axis:
    if not spec.models:
        return [(model_label(base.model.name), {})]
    axis: Axis = []
    for i, entry in enumerate(spec.models):
        if isinstance(entry, str):
            entry = {"model.name": entry}
        label, keys = entry_overrides(entry, f"models[{i}]")
        name = keys.get("model.name", base.model.name)
        axis.append((label or model_label(str(name)), keys))
    return unique_labels(axis, "models")


def dataset_axis(spec: GridSpec, base: Config) -> Axis:
    if not spec.datasets:  # one dataset: the base config's run name says what it is
        return [(slug(base.name) if base.name else dataset_label(base), {})]
    axis: Axis = []
    for i, entry in enumerate(spec.datasets):
        label, keys = entry_overrides(entry, f"datasets[{i}]")
        if label is None:
            raw = base.model_dump(mode="json")
            for key, value in keys.items():
                set_dotted(raw, key, value)
            label = dataset_label(validate_config(raw))
        axis.append((label, keys))
    return unique_labels(axis, "datasets")


def unique_labels(axis: Axis, where: str) -> Axis:
    labels = [label for label, _ in axis]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        shown = ", ".join(f"{label!r} ({labels.count(label)} entries)" for label in repeated)
        raise ConfigError(f"{where}: entries share a label: {shown}; give each entry a "
                          f"distinct name: (e.g. name: {repeated[0]}-2)")
    return axis


def zip_rows(group: dict[str, list[Any]], where: str) -> list[dict[str, Any]]:
    lengths = {key: len(values) for key, values in group.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ConfigError(f"{where}: the lists of a zip group must have the same length "
                          f"({shown})")
    return [dict(zip(group, values)) for values in zip(*group.values())]


def lora_axes(spec: GridSpec) -> list[list[dict[str, Any]]]:
    axes = []
    if spec.variants:
        axes.append([entry_overrides(v, f"variants[{i}]")[1]
                     for i, v in enumerate(spec.variants)])
    for i, group in enumerate(spec.zip_groups):
        axes.append(zip_rows(group, f"zip[{i}]" if isinstance(spec.zip, list) else "zip"))
    for key, values in spec.grid.items():
        axes.append([{key: v} for v in values])
    return axes


def lora_combinations(spec: GridSpec) -> list[dict[str, Any]]:
    return [{k: v for part in combo for k, v in part.items()}
            for combo in itertools.product(*lora_axes(spec))]


def check_disjoint_axes(spec: GridSpec, models: Axis, datasets: Axis) -> None:
    """A key varied by two axes would silently take the later value: refuse it."""
    owners: dict[str, str] = {}
    named = [("models", {k for _, keys in models for k in keys}),
             ("datasets", {k for _, keys in datasets for k in keys}),
             ("seeds", {"training.seed"} if spec.seeds else set())]
    named += [(f"axis {i}", {k for row in axis for k in row})
              for i, axis in enumerate(lora_axes(spec))]
    for axis_name, keys in named:
        for key in keys:
            if key in owners:
                raise ConfigError(f"{key} is varied by both {owners[key]} and {axis_name}; "
                                  "vary each key in one place")
            owners[key] = axis_name


@dataclass
class Draft:
    config: Config
    model: str
    dataset: str
    baseline: bool


def draft(base_raw: dict[str, Any], keys: dict[str, Any], extra: list[str],
          smoke_keys: dict[str, Any], grid_dir: Path, labels: tuple[str, str, bool],
          errors: list[str]) -> Draft | None:
    """One run's config: base + grid keys + --set overrides (+ smoke keys), validated."""
    model, dataset, baseline = labels
    raw = copy.deepcopy(base_raw)
    where = f"{dataset} x {model}" + (" baseline" if baseline else f" {keys_text(keys)}")
    try:
        for key, value in keys.items():
            set_dotted(raw, key, value)
        for item in extra:
            apply_override(raw, item)
        for key, value in smoke_keys.items():
            set_dotted(raw, key, value)
        if baseline:
            raw["lora"] = LoraConfig(enabled=False).model_dump(mode="json")
            raw["training"]["unfreeze_top_layers"] = 0
        config = validate_config(raw)
        resolve_data_paths(config, grid_dir)
    except ConfigError as exc:
        errors.append(f"{where}: {exc}")
        return None
    return Draft(config, model, dataset, baseline)


def keys_text(keys: dict[str, Any]) -> str:
    shown = {k: v for k, v in keys.items() if k.startswith(("lora.", "training."))}
    return "(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"


def excluded(d: Draft, rules: list[dict[str, Any]]) -> bool:
    flat = flatten(d.config.model_dump(mode="json"))
    facts = {"model": d.model, "dataset": d.dataset, "baseline": d.baseline,
             "seed": d.config.training.seed}
    for rule in rules:
        for key in rule:
            if key not in facts and key not in flat:
                raise ConfigError(f"exclude: {key!r} is neither model, dataset, seed, baseline "
                                  "nor a config key")
        if all(matches(facts.get(k, flat.get(k)), v) for k, v in rule.items()):
            return True
    return False


def matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, list) and not isinstance(actual, list):
        return actual in wanted
    return actual == wanted


def finish_runs(drafts: list[Draft], base: Config, labelled: set[str]) -> list[PlannedRun]:
    """Ids, names, varying keys; identical configs are one run. `labelled`: keys set by the
    models/datasets entries, which the model and dataset labels already stand for."""
    flats = [flatten(d.config.model_dump(mode="json")) for d in drafts]
    lora_flats = [f for f, d in zip(flats, drafts) if not d.baseline]
    candidates = set().union(*lora_flats) - {"name", "training.seed"}
    varying = sorted(k for k in candidates if len({repr(f.get(k)) for f in lora_flats}) > 1)
    base_flat = flatten(base.model_dump(mode="json"))
    runs: dict[str, PlannedRun] = {}
    for d, flat in zip(drafts, flats):
        params = {"lora.enabled": False} if d.baseline else {
            k: flat[k] for k in varying if k not in labelled}
        name = run_name(d.config, d.model, d.dataset, params, d.baseline)
        d.config.name = name
        identity = run_id(d.config)
        changes = {k: v for k, v in flat.items() if k != "name" and base_flat.get(k) != v
                   and not (d.baseline and k.startswith("lora.") and k != "lora.enabled")}
        runs.setdefault(identity, PlannedRun(identity, name, d.model, d.dataset,
                                             d.config.training.seed, d.baseline, d.config,
                                             params, changes))
    unique_names(list(runs.values()))
    return list(runs.values())


def unique_names(runs: list[PlannedRun]) -> None:
    """Names must tell configurations apart (the report groups seeds by name)."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.name] = seen.get(run.name, 0) + 1
    for run in runs:
        if seen[run.name] > 1:
            stem, _, seed = run.name.rpartition("-s")
            run.name = f"{stem}-{run.id[:6]}-s{seed}"
            run.config.name = run.name
