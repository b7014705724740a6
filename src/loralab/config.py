"""The typed config: the schema, loading (a file, or a section `FILE:KEY` of a bigger one such
as DVC's params.yaml), dotted `--set` overrides and validation messages that name keys.

A config is four sections (`model`, `lora`, `training`, `data`) plus `eval`, an optional run
`name` and an optional LLM `judge`. Instead of `lora`, `adapters:` lists several adapters
trained one after the other on one base model (see loralab.config_adapters). Every section
refuses unknown keys; errors name the full key path and suggest the nearest known key
("lora.alpah: unknown key; did you mean lora.alpha?"). YAML reading and overrides live in
loralab.config_yaml, the messages in loralab.config_errors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from loralab.config_errors import format_validation_error
from loralab.config_judge import JudgeConfig
from loralab.config_section import Section
from loralab.config_yaml import (  # noqa: F401 - re-exported: loralab.config is the entry point
    apply_override,
    flatten,
    overrides_from,
    parse_yaml,
    read_section,
    read_yaml_mapping,
    set_dotted,
    split_section,
)
from loralab.errors import ConfigError

TaskType = Literal["sequence_classification", "regression", "token_classification",
                   "causal_lm"]
MetricSuite = Literal["json", "qa", "multiple_choice", "code", "text"]


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
    # more training files (e.g. `loralab feedback export` pairs), read as they are (their own
    # prompt/response or messages, default columns), added to the training split only
    extra_train: list[str] = Field(default_factory=list)

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


class TrainingOverrides(TrainingConfig):
    """An adapter entry's `training:` keys, checked together with the top-level ones once
    merged (eval_steps may come from the top level)."""

    def _steps_need_eval_steps(self) -> TrainingOverrides:  # the merged config checks it
        return self


class AdapterEntry(Section):
    """One entry of `adapters:`: its own LoRA settings, and keys of data / training / eval
    merged over the top-level sections (only the keys given here)."""
    name: str
    lora: LoraConfig = Field(default_factory=LoraConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingOverrides = Field(default_factory=TrainingOverrides)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        from loralab.config_adapters import check_adapter_name

        return check_adapter_name(name)

    @model_serializer(mode="wrap")
    def _given_keys_only(self, handler: Any, info: Any) -> dict[str, Any]:
        """The merged sections as written (a dump reloads to the same config)."""
        out = handler(self)
        for section in ("data", "training", "eval"):
            out[section] = getattr(self, section).model_dump(mode=info.mode,
                                                             exclude_unset=True)
        return out


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
    judge: JudgeConfig | None = None
    adapters: list[AdapterEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _several_adapters(self) -> Config:
        if self.adapters:
            from loralab.config_adapters import check_adapters

            check_adapters(self)
        return self

    @model_serializer(mode="wrap")
    def _without_unused_sections(self, handler: Any, info: Any) -> dict[str, Any]:
        """No `adapters`/`judge` keys when unused; no `lora` beside `adapters` (each adapter
        has its own), so a dump validates again."""
        out = handler(self)
        if not self.adapters:
            out.pop("adapters", None)
        else:
            out.pop("lora", None)
        if self.judge is None:
            out.pop("judge", None)
        return out

    @model_validator(mode="after")
    def _task_specific_keys(self) -> Config:
        if self.model.task == "causal_lm":
            if self.lora.method == "weighted":
                raise ValueError("lora.method=weighted is for encoder tasks, not causal_lm")
            if self.eval.generate and not self.data.metrics and not self.adapters:
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

    def adapter_configs(self) -> list[tuple[str, Config]]:
        """(name, the resolved single-adapter config) of every `adapters:` entry, in order."""
        from loralab.config_adapters import adapter_configs

        return adapter_configs(self)


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path | None, overrides: list[str] | None = None, *,
                set_from: list[str] | None = None) -> Config:
    """Read a YAML config (or start from defaults), apply `a.b=value` overrides, validate.

    `path` is a file, or a section of one: `params.yaml:train` is the mapping under `train`
    (DVC's `file:key` notation). `set_from` names mappings of dotted overrides
    (`params.yaml:profiles.smoke.train`), applied before `overrides`. Relative data paths are
    resolved against the config file's folder, so a config works from any working directory;
    `$VARS` and `~` in paths are expanded.
    """
    raw: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        raw, file = read_config_mapping(path)
        base_dir = file.resolve().parent
    for spec in set_from or []:
        for key, value in overrides_from(spec):
            set_dotted(raw, key, value, source=f"--set-from {spec}: ")
    for item in overrides or []:
        apply_override(raw, item)
    config = validate_config(raw)
    resolve_data_paths(config, base_dir)
    return config


def read_config_mapping(spec: str | Path) -> tuple[dict[str, Any], Path]:
    """The config mapping of a file or `FILE:KEY` section, and the file."""
    if Path(spec).is_dir():
        raise ConfigError(f"{spec} is a folder, not a config file; give the YAML file")
    file, key = split_section(spec)
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    if key is None:
        return read_yaml_mapping(file), file
    value, _ = read_section(spec)
    if not isinstance(value, dict):
        raise ConfigError(f"{spec}: expected a mapping of config sections, got "
                          f"{type(value).__name__}")
    return value, file


def validate_config(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, Config)) from None


def resolve_data_paths(config: Config, base_dir: Path) -> None:
    for data in [config.data, *(entry.data for entry in config.adapters)]:
        resolve_section_paths(data, base_dir)
    name = config.model.name
    expanded = os.path.expanduser(os.path.expandvars(name))
    if name.startswith((".", "/", "~", "$")):
        config.model.name = resolve_path(expanded, base_dir)


def resolve_section_paths(data: DataConfig, base_dir: Path) -> None:
    """A data section's paths, absolute (only the keys it sets: an adapter entry's
    unset keys stay unset)."""
    for split in ("train", "validation", "test", "schema_file"):
        value = getattr(data, split)
        if value:
            setattr(data, split, resolve_path(value, base_dir))
    if data.extra_train:
        data.extra_train = [resolve_path(p, base_dir) for p in data.extra_train]


def resolve_path(value: str, base_dir: Path) -> str:
    path = Path(os.path.expanduser(os.path.expandvars(value)))
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
