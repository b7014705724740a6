"""The grid file: which runs a sweep is made of.

    base: mrpc_minilm.yaml            # a config file, relative to this file (or absolute)
    set: {training.epochs: 3}         # applied to every run
    models: [sentence-transformers/all-MiniLM-L6-v2, {name: bert, model.name: bert-base-uncased}]
    datasets: [{name: mrpc, model.task: sequence_classification, data.train: ..., ...}]
    variants: [{lora.r: 4, lora.alpha: 8}, {lora.r: 8, lora.alpha: 16}]   # explicit rows
    zip: {lora.r: [4, 8], lora.alpha: [8, 16]}     # values that vary together (or a list of such)
    grid: {lora.dropout: [0.0, 0.1]}               # cartesian product
    exclude: [{dataset: stsb, lora.r: 4}]
    seeds: [0, 1, 2]
    baseline: true                                 # + the no-LoRA run per model x dataset x seed

A plain config file with an inline `grid:` (or any of the keys above but `base`) is a grid
whose base is the rest of that file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loralab.config import read_yaml_mapping
from loralab.errors import ConfigError

GRID_KEYS = ("base", "set", "grid", "zip", "variants", "models", "datasets", "exclude",
             "seeds", "baseline", "smoke", "resources", "description")
CONFIG_SECTIONS = ("name", "model", "lora", "training", "data")
DEFAULT_SMOKE = {"data.max_train_samples": 64, "data.max_eval_samples": 64,
                 "training.epochs": 1, "training.max_steps": None}


class Resources(BaseModel):
    """What one run asks of the scheduler (Ray) and of the local machine (threads)."""
    model_config = ConfigDict(extra="forbid")
    cpus: int = Field(default=1, ge=1)
    gpus: float = Field(default=0, ge=0)


class GridSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: str | None = None
    description: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] | list[dict[str, list[Any]]] = Field(default_factory=list)
    variants: list[dict[str, Any]] = Field(default_factory=list)
    models: list[str | dict[str, Any]] = Field(default_factory=list)
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    seeds: list[int] | None = None
    baseline: bool = False
    smoke: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_SMOKE))
    resources: Resources = Field(default_factory=Resources)

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid.{key} is an empty list; give at least one value")
        return grid

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and not seeds:
            raise ValueError("seeds is an empty list; give at least one seed or leave it out")
        return seeds

    @property
    def zip_groups(self) -> list[dict[str, list[Any]]]:
        return [self.zip] if isinstance(self.zip, dict) else list(self.zip)


def load_grid_file(path: Path) -> tuple[GridSpec, dict[str, Any], Path]:
    """(the grid, the raw base config, the folder relative paths start from)."""
    if not path.is_file():
        raise ConfigError(f"grid file not found: {path}")
    raw = read_yaml_mapping(path)
    if not raw:
        raise ConfigError(f"{path}: the grid file is empty; give a base: config and what to "
                          "vary (grid:, zip:, variants:, models:, datasets:, seeds:)")
    grid_dir = path.resolve().parent
    if "base" in raw:
        stray = sorted(set(raw) & set(CONFIG_SECTIONS) - {"name"})
        if stray:
            raise ConfigError(f"{path}: {stray[0]}: a grid file with base: takes config keys "
                              f"under set: (e.g. set: {{{stray[0]}.KEY: VALUE}}), not as "
                              "sections")
        spec = parse_grid(raw, path)
        return spec, {}, grid_dir
    grid_raw = {k: v for k, v in raw.items() if k in GRID_KEYS}
    base_raw = {k: v for k, v in raw.items() if k not in GRID_KEYS}
    return parse_grid(grid_raw, path), base_raw, grid_dir


def parse_grid(raw: dict[str, Any], path: Path) -> GridSpec:
    raw = {k: v for k, v in raw.items() if k != "name"}
    try:
        return GridSpec.model_validate(raw)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("str", "dict",
                                                                                "list")))
            if err["type"] == "extra_forbidden":
                messages.append(f"{loc}: unknown grid key; known keys: {', '.join(GRID_KEYS)}")
            else:
                messages.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError(f"{path}: " + "; ".join(dict.fromkeys(messages))) from None
