"""The search space of `loralab tune`: a YAML mapping from config keys to distributions.

    params:
      training.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
      lora.r:                 {type: int, low: 2, high: 16, step: 2}
      lora.dropout:           {type: choice, values: [0.0, 0.1]}
    pruner: median            # or halving, or none (the --pruner flag wins)

Every key is checked through the config schema before any trial runs: the key must exist and
the schema must accept the base config with each bound (or each choice) put in, so a bad space
is one line naming the key, before anything is written.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.config import read_yaml_mapping, set_dotted, validate_config
from loralab.errors import ConfigError

KINDS = ("float", "int", "choice")
PRUNERS = ("median", "halving", "none")
TOP_KEYS = {"params", "pruner"}
PARAM_KEYS = {"float": {"type", "low", "high", "log", "step"},
              "int": {"type", "low", "high", "log", "step"},
              "choice": {"type", "values"}}


@dataclass(frozen=True)
class Param:
    key: str                       # a dotted config key, e.g. training.learning_rate
    kind: str                      # float | int | choice
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    values: tuple[Any, ...] = ()   # choice: the values (any YAML value)

    def probes(self) -> list[Any]:
        """The values the schema must accept: the bounds, or every choice."""
        if self.kind == "choice":
            return list(self.values)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]

    def suggest(self, trial: Any) -> Any:
        """The trial's value (Optuna's suggest_*); choices that are lists or mappings travel
        as JSON text, because Optuna's categorical values must be plain scalars."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log,
                                       step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        picked = trial.suggest_categorical(self.key, [encode(v) for v in self.values])
        return decode(picked, self.values)


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]
    pruner: str | None             # the space file's pruner (None: not given)
    source: Path

    def as_json(self) -> list[dict[str, Any]]:
        return [{"key": p.key, "kind": p.kind, "low": p.low, "high": p.high, "log": p.log,
                 "step": p.step, "values": list(p.values)} for p in self.params]


def encode(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def decode(picked: Any, values: tuple[Any, ...]) -> Any:
    for value in values:
        if encode(value) == picked:
            return value
    return picked


def load_space(path: str | Path, base_raw: dict[str, Any]) -> Space:
    """Read and check the space against the base config (its raw mapping)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--space {path}: no such file")
    raw = read_yaml_mapping(file)
    where = f"--space {file.name}"
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; a space file holds "
                          "params: (config key -> distribution) and optionally pruner:")
    entries = raw.get("params")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{where}: params: must map at least one config key to a "
                          "distribution, e.g. training.learning_rate: {type: float, low: "
                          "1.0e-5, high: 1.0e-2, log: true}")
    pruner = raw.get("pruner")
    if pruner is not None and pruner not in PRUNERS:
        raise ConfigError(f"{where}: pruner: expected one of {', '.join(PRUNERS)} "
                          f"(got {pruner!r})")
    params = tuple(parse_param(str(key), spec, where) for key, spec in entries.items())
    for param in params:
        check_against_schema(param, base_raw, where)
    return Space(params, pruner, file)


def parse_param(key: str, spec: Any, where: str) -> Param:
    name = f"{where}: {key}"
    if not isinstance(spec, dict) or spec.get("type") not in KINDS:
        raise ConfigError(f"{name}: expected a mapping with type: float, int or choice")
    kind = spec["type"]
    extra = set(spec) - PARAM_KEYS[kind]
    if extra:
        raise ConfigError(f"{name}: unknown field {sorted(extra)[0]!r} for type {kind} "
                          f"(fields: {', '.join(sorted(PARAM_KEYS[kind]))})")
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{name}: a choice needs a non-empty list of values")
        return Param(key, kind, values=tuple(values))
    low, high = number(spec, "low", name, kind), number(spec, "high", name, kind)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{name}: log: expected true or false (got {log!r})")
    step = spec.get("step")
    if step is not None:
        step = number(spec, "step", name, kind)
        if step <= 0 or log:
            raise ConfigError(f"{name}: step must be positive and cannot go with log: true")
    if low > high:
        raise ConfigError(f"{name}: low ({low:g}) is greater than high ({high:g})")
    if log and low <= 0:
        raise ConfigError(f"{name}: log: true needs a positive low bound (got {low:g})")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def number(spec: dict[str, Any], field: str, name: str, kind: str) -> float:
    value = spec.get(field)
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or (kind == "int" and not whole):
        shown = "a whole number" if kind == "int" else "a finite number"
        raise ConfigError(f"{name}: {field}: expected {shown} (got {value!r})")
    return float(value)


def check_against_schema(param: Param, base_raw: dict[str, Any], where: str) -> None:
    """The base config with each probe value put in must validate."""
    for value in param.probes():
        raw = copy.deepcopy(base_raw)
        try:
            set_dotted(raw, param.key, value)
            validate_config(raw)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {param.key}={json.dumps(value)}: {exc}") from None


def apply_params(base_raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The base config's raw mapping with a trial's values put in."""
    raw = copy.deepcopy(base_raw)
    for key, value in params.items():
        set_dotted(raw, key, value)
    return raw
