"""The typed config: YAML loading, dotted `--set` overrides and validation messages that name keys.

A config is four sections (`model`, `lora`, `training`, `data`) plus an optional run `name`.
Every section refuses unknown keys; errors name the full key path and suggest the nearest
known key ("lora.alpah: unknown key; did you mean lora.alpha?").
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loralab.errors import ConfigError

TaskType = Literal["sequence_classification", "regression", "token_classification",
                   "causal_lm"]
MetricSuite = Literal["json", "qa", "multiple_choice", "code", "text"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads `true` as 1 for a number field; a boolean there is a mistake."""
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if _numeric(annotation):
                raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
        return value


def _numeric(annotation: Any) -> bool:
    """A number field (int / float, optionally None) that does not also accept a bool."""
    members = typing.get_args(annotation) or (annotation,)
    return bool(members) and bool not in members and all(
        m in (int, float, type(None)) for m in members) and any(m in (int, float)
                                                                for m in members)


class ModelConfig(Section):
    name: str = "sentence-transformers/all-MiniLM-L6-v2"
    task: TaskType = "sequence_classification"
    labels: list[str] | None = None
    num_labels: int | None = Field(default=None, ge=1)
    max_length: int = Field(default=128, ge=8)
    revision: str | None = None
    trust_remote_code: bool = False
    gguf_file: str | None = None
    quantization: Literal["4bit", "8bit"] | None = None

    @model_validator(mode="after")
    def _labels_agree(self) -> ModelConfig:
        if self.labels is not None and self.num_labels is not None:
            if len(self.labels) != self.num_labels:
                raise ValueError(
                    f"model.labels has {len(self.labels)} names but model.num_labels is "
                    f"{self.num_labels}; give one of them or make them agree")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("model.labels contains a duplicate name")
        return self


WEIGHTED_ONLY = ("scale_factor", "output_dropout", "lambda_reg", "reg_tolerance", "eps")


class LoraConfig(Section):
    enabled: bool = True
    r: int = Field(default=16, ge=1)
    alpha: float = Field(default=32, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] | None = None
    preset: Literal["default", "attention", "mlp", "all-linear"] = "default"
    layers: StrictInt | list[StrictInt] | Literal["all"] = "all"
    use_rslora: bool = False
    use_dora: bool = False
    method: Literal["standard", "weighted"] = "standard"
    scale_factor: float = Field(default=1.0, gt=0)
    output_dropout: float = Field(default=0.0, ge=0, lt=1)
    lambda_reg: float = Field(default=0.0, ge=0)
    reg_tolerance: float = Field(default=0.5, ge=0)
    eps: float = Field(default=1e-6, gt=0)

    @model_validator(mode="after")
    def _weighted_knobs(self) -> LoraConfig:
        if self.method == "weighted" and self.use_dora:
            raise ValueError("lora.method=weighted hooks the plain LoRA branch and cannot be "
                             "combined with lora.use_dora=true")
        if isinstance(self.layers, int) and self.layers < 1:
            raise ValueError(f"lora.layers: {self.layers} adapts no layer; give a number of top "
                             "layers >= 1, a list of layer indices, or all")
        return self  # weighted-only keys under method standard: accepted, noted, ignored


class LossTerm(Section):
    """One weighted term of a causal LM's training loss (training.loss)."""
    type: Literal["ce", "first_k_ce", "kd"]
    weight: float = Field(default=1.0, gt=0)
    k: int = Field(default=8, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    teacher: str | None = None


class TrainingConfig(Section):
    epochs: float = Field(default=3, gt=0)
    max_steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=32, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=5e-4, gt=0)
    head_learning_rate: float | None = Field(default=None, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup",
                       "polynomial", "cosine_with_restarts"] = "linear"
    warmup: float = Field(default=0.06, ge=0)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    seed: int = 42
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    eval_steps: int | None = Field(default=None, ge=1)
    save_strategy: Literal["best", "last"] = "best"
    early_stopping_patience: int | None = Field(default=None, ge=1)
    metric_for_best: str | None = None
    greater_is_better: bool | None = None
    unfreeze_top_layers: int = Field(default=0, ge=0)
    unfreeze_after_epoch: int = Field(default=1, ge=0)
    unfreeze_learning_rate: float | None = Field(default=None, gt=0)
    logging_steps: int = Field(default=10, ge=1)
    group_by_length: bool = True
    threads: int | None = Field(default=None, ge=1)
    checkpoint: Literal["epoch", "steps", "no"] = "epoch"
    checkpoint_steps: int | None = Field(default=None, ge=1)
    loss: list[LossTerm] = Field(default_factory=lambda: [LossTerm(type="ce")])
    gradient_checkpointing: bool = False

    @model_validator(mode="after")
    def _steps_need_eval_steps(self) -> TrainingConfig:
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError("training.eval_strategy=steps needs training.eval_steps")
        if self.checkpoint == "steps" and self.checkpoint_steps is None:
            raise ValueError("training.checkpoint=steps needs training.checkpoint_steps")
        if self.early_stopping_patience and self.eval_strategy == "no":
            raise ValueError("training.early_stopping_patience needs evaluation: set "
                             "training.eval_strategy to epoch or steps")
        return self


class ColumnsConfig(Section):
    text: str | int | None = None
    text_pair: str | int | None = None
    label: str | int | None = None
    tokens: str | int | None = None
    tags: str | int | None = None


class DataConfig(Section):
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    format: Literal["auto", "jsonl", "json", "csv", "tsv", "parquet", "conll", "presidio",
                    "clinc", "squad", "mbpp", "multiple_choice"] = "auto"
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    splits: dict[str, str] = Field(default_factory=dict)
    validation_fraction: float = Field(default=0.1, gt=0, lt=1)
    split_seed: int = 0
    max_train_samples: int | None = Field(default=None, ge=1)
    max_eval_samples: int | None = Field(default=None, ge=1)
    include_oos: bool = True
    filter: dict[str, Any] = Field(default_factory=dict)
    # causal_lm: how a record becomes prompt + response, and how answers are scored
    prompt_template: str | None = None
    response_template: str | None = None
    chat_template: bool = False
    system_prompt: str | None = None
    packing: bool = False
    truncation: Literal["left", "drop", "error"] = "left"
    metrics: list[MetricSuite] = Field(default_factory=list)
    schema_file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.hub and self.train:
            raise ValueError("give data.train (local files) or data.hub (a hub dataset), not both")
        return self


class EvalConfig(Section):
    """Generation-based evaluation of causal LMs (decoding and which examples)."""
    generate: bool = False
    max_samples: int | None = Field(default=64, ge=1)
    max_new_tokens: int = Field(default=128, ge=1)
    do_sample: bool = False
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    stop: list[str] = Field(default_factory=list)
    batch_size: int = Field(default=16, ge=1)
    code_timeout: float = Field(default=10.0, gt=0)


CAUSAL_ONLY = {"data.prompt_template", "data.response_template", "data.chat_template",
               "data.system_prompt", "data.packing", "data.metrics", "data.schema_file",
               "model.gguf_file", "model.quantization", "eval.generate",
               "training.gradient_checkpointing"}


class Config(Section):
    name: str | None = None
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _task_specific_keys(self) -> Config:
        if self.model.task == "causal_lm":
            if self.lora.method == "weighted":
                raise ValueError("lora.method=weighted is for encoder tasks, not causal_lm")
            if self.eval.generate and not self.data.metrics:
                raise ValueError("eval.generate needs data.metrics: the suites to score the "
                                 "generated answers with (json, qa, multiple_choice, code, "
                                 "text)")
            return self
        for key in sorted(CAUSAL_ONLY):
            section, _, leaf = key.partition(".")
            part = getattr(self, section)
            if getattr(part, leaf) != type(part).model_fields[leaf].get_default(
                    call_default_factory=True):
                raise ValueError(f"{key} is for model.task=causal_lm (this config's task is "
                                 f"{self.model.task})")
        if self.lora.method == "weighted" and self.training.precision == "fp16":
            raise ValueError("lora.method=weighted cannot train in training.precision=fp16: "
                             "its gradient factor is lora.scale_factor / lora.eps while B is "
                             "still zero, which overflows fp16; use bf16 or fp32")
        if [t.type for t in self.training.loss] != ["ce"]:
            raise ValueError("training.loss terms other than ce are for model.task=causal_lm")
        return self

    @property
    def run_name(self) -> str:
        return self.name or self.model.task


# --------------------------------------------------------------------------- loading


class YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false are booleans, so `eval_strategy: no` stays "no"."""


YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                 re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or start from defaults), apply `a.b=value` overrides, validate.

    Relative data paths are resolved against the config file's folder, so a config works from
    any working directory; `$VARS` and `~` in paths are expanded.
    """
    raw: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a config file; give the YAML file")
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        raw = read_yaml_mapping(path)
        base_dir = path.resolve().parent
    for item in overrides or []:
        apply_override(raw, item)
    config = validate_config(raw)
    resolve_data_paths(config, base_dir)
    return config


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, "
                          f"got {type(data).__name__}")
    return data


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `a.b.c=value` override; the value is parsed as YAML (`1e-4`, `[1,2]`, `true`)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. training.epochs=1")
    try:
        parsed = parse_yaml(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    set_dotted(raw, key, parsed, source="--set ")


def set_dotted(raw: dict[str, Any], key: str, value: Any, *, source: str = "") -> None:
    """raw["a"]["b"]["c"] = value for key "a.b.c", creating sections on the way."""
    node = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{source}{key}: {'.'.join(parts[:depth + 1])} is a value, "
                              "not a section")
        node = child
    node[parts[-1]] = value


def flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"lora": {"r": 8}} -> {"lora.r": 8}; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def validate_config(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


DOTTED_KEY = re.compile(r"\b[a-z_]+\.[a-z_]+\b")


def format_validation_error(exc: ValidationError) -> str:
    by_key: dict[str, list[str]] = {}
    for err in exc.errors():
        loc, branch = split_union_branch([str(p) for p in err["loc"]])
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            message = f"{key}: unknown key{suggest_key(loc)}"
        elif err["type"] == "value_error":
            message = str(err["msg"]).removeprefix("Value error, ")
            if key and not DOTTED_KEY.search(message):  # a field's own check: name the key
                message = f"{key}: {message}"
        else:
            got = err.get("input")
            shown = f" (got {got!r})" if not isinstance(got, dict) else (
                f" (got the mapping {got!r}: YAML reads {{...}} as a mapping; quote the value, "
                f"e.g. --set '{key}=\"{{...}}\"')" if "str" in err["type"] else "")
            detail = f"as {branch}: {err['msg']}" if branch else err["msg"]
            message = f"{key}: {detail}{shown}"
        by_key.setdefault(key, []).append(message)
    lines = []
    for key, messages in by_key.items():
        if len(messages) > 1 and all(m.startswith(f"{key}: as ") for m in messages):
            options = " | ".join(m.split(": as ", 1)[1].split(":", 1)[0] for m in messages)
            got = messages[0].rsplit(" (got ", 1)[-1] if "(got " in messages[0] else ""
            lines.append(f"{key}: expected {options}" + (f" (got {got}" if got else ""))
        else:
            lines.extend(dict.fromkeys(messages))
    return "; ".join(lines)


def split_union_branch(loc: list[str]) -> tuple[list[str], str]:
    """Cut pydantic's union-member tags (`int`, `list[int]`) off an error location."""
    model: type[BaseModel] | None = Config
    for i, part in enumerate(loc):
        if model is None:
            return (loc[:i], part) if not part.isdigit() else (loc, "")
        field = model.model_fields.get(part)
        if field is None:
            return loc, ""
        annotation = field.annotation
        if getattr(annotation, "__origin__", None) is dict:
            return loc, ""
        model = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel) else None
    return loc, ""


# names that PEFT / transformers users type, mapped to our full key paths
KEY_ALIASES = {
    "rank": "lora.r", "lora_r": "lora.r", "lora_alpha": "lora.alpha",
    "lora_dropout": "lora.dropout", "lr": "training.learning_rate",
    "num_epochs": "training.epochs", "num_train_epochs": "training.epochs",
    "per_device_train_batch_size": "training.batch_size",
    "per_device_eval_batch_size": "training.eval_batch_size",
    "warmup_ratio": "training.warmup", "warmup_steps": "training.warmup",
    "lr_scheduler_type": "training.scheduler", "evaluation_strategy": "training.eval_strategy",
    "model_name_or_path": "model.name", "model_name": "model.name",
    "max_seq_length": "model.max_length", "train_file": "data.train",
    "validation_file": "data.validation",
}


def suggest_key(loc: list[str]) -> str:
    """'; did you mean lora.alpha?' for a mistyped key, or the list of known keys."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        if part.isdigit():  # an item of a list of sections (training.loss.0)
            continue
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if getattr(annotation, "__origin__", None) is list:
            annotation = annotation.__args__[0]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    if loc[-1] in KEY_ALIASES:
        return f"; did you mean {KEY_ALIASES[loc[-1]]}?"
    known = list(model.model_fields)
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    prefix = ".".join(loc[:-1])
    if close:
        return f"; did you mean {prefix + '.' if prefix else ''}{close[0]}?"
    return f"; known keys{' of ' + prefix if prefix else ''}: {', '.join(known)}"


def resolve_data_paths(config: Config, base_dir: Path) -> None:
    for split in ("train", "validation", "test", "schema_file"):
        value = getattr(config.data, split)
        if value:
            setattr(config.data, split, resolve_path(value, base_dir))
    name = config.model.name
    expanded = os.path.expanduser(os.path.expandvars(name))
    if name.startswith((".", "/", "~", "$")):
        config.model.name = resolve_path(expanded, base_dir)


def resolve_path(value: str, base_dir: Path) -> str:
    path = Path(os.path.expanduser(os.path.expandvars(value)))
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
