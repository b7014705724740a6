"""The config sections: `model`, `lora`, `training` (with its loss terms), `data` (with its
columns) and `eval`. Each refuses unknown keys (see loralab.config.section); the whole config
that holds them is loralab.config.schema.Config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from loralab.config.section import Section

TaskType = Literal["sequence_classification", "regression", "token_classification",
                   "causal_lm"]
MetricSuite = Literal["json", "qa", "multiple_choice", "code", "text"]
Tracker = Literal["tensorboard", "mlflow", "trackio", "wandb"]   # the Trainer's report_to names
# upper bounds of numeric keys (every float is also finite: loralab.config.section)
MAX_LENGTH = 1_048_576      # tokens; the model's own position limit is checked when it loads
MAX_BATCH = 65_536
MAX_SEED = 2**32 - 1        # numpy's seed range


class ModelConfig(Section):
    name: str = "sentence-transformers/all-MiniLM-L6-v2"
    task: TaskType = "sequence_classification"
    labels: list[str] | None = None
    num_labels: int | None = Field(default=None, ge=1, le=1_000_000)
    max_length: int = Field(default=128, ge=8, le=MAX_LENGTH)
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
        if self.labels == []:
            raise ValueError("model.labels is empty: give the label names, or null to infer "
                             "them from the training data")
        return self


WEIGHTED_ONLY = ("scale_factor", "output_dropout", "lambda_reg", "reg_tolerance", "eps")


class LoraConfig(Section):
    enabled: bool = True
    r: int = Field(default=16, ge=1, le=65_536)
    alpha: float = Field(default=32, gt=0, le=10_000)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] | None = None
    preset: Literal["default", "attention", "mlp", "all-linear"] = "default"
    layers: StrictInt | list[StrictInt] | Literal["all"] = "all"
    use_rslora: bool = False
    use_dora: bool = False
    method: Literal["standard", "weighted"] = "standard"
    scale_factor: float = Field(default=1.0, gt=0, le=1000)
    output_dropout: float = Field(default=0.0, ge=0, lt=1)
    lambda_reg: float = Field(default=0.0, ge=0, le=1000)
    reg_tolerance: float = Field(default=0.5, ge=0, le=1e6)
    eps: float = Field(default=1e-6, gt=0, le=1)

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
    weight: float = Field(default=1.0, gt=0, le=1000)
    k: int = Field(default=8, ge=1, le=MAX_LENGTH)
    temperature: float = Field(default=1.0, gt=0, le=100)
    teacher: str | None = None


REMOVED_DIRECTION = (
    "training.greater_is_better was removed: the direction of training.metric_for_best comes "
    "from the metric registry (loss, mse and perplexity lower is better, scores higher; see "
    "docs/config.md); delete the key")


class TrainingConfig(Section):
    epochs: float = Field(default=3, gt=0, le=10_000)
    max_steps: int | None = Field(default=None, ge=1, le=10**9)
    # a floor on optimizer steps: small datasets get more (whole) epochs (training/adaptive.py)
    min_steps: int | None = Field(default=None, ge=1, le=10**9)
    # epoch 1 ends at the label prior: restart once at a lower rate (training/collapse.py)
    on_collapse: Literal["restart", "warn", "stop"] = "restart"
    batch_size: int = Field(default=32, ge=1, le=MAX_BATCH)
    eval_batch_size: int = Field(default=64, ge=1, le=MAX_BATCH)
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=MAX_BATCH)
    learning_rate: float = Field(default=5e-4, gt=0, le=1)
    head_learning_rate: float | None = Field(default=None, gt=0, le=1)
    weight_decay: float = Field(default=0.01, ge=0, le=1)  # 1 - lr * wd >= 0
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup",
                       "polynomial", "cosine_with_restarts"] = "linear"
    warmup: float = Field(default=0.06, ge=0, le=10**9)
    max_grad_norm: float | None = Field(default=1.0, gt=0, le=1e6)
    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    eval_steps: int | None = Field(default=None, ge=1)
    save_strategy: Literal["best", "last"] = "best"
    early_stopping_patience: int | None = Field(default=None, ge=1)
    metric_for_best: str | None = None
    unfreeze_top_layers: int = Field(default=0, ge=0)
    unfreeze_after_epoch: int = Field(default=1, ge=0)
    unfreeze_learning_rate: float | None = Field(default=None, gt=0, le=1)
    logging_steps: int = Field(default=10, ge=1)
    group_by_length: bool = True
    threads: int | None = Field(default=None, ge=1, le=1024)
    checkpoint: Literal["epoch", "steps", "no"] = "epoch"
    checkpoint_steps: int | None = Field(default=None, ge=1)
    loss: list[LossTerm] = Field(default_factory=lambda: [LossTerm(type="ce")])
    # causal_lm: recompute activations in backward; auto decides from an estimate of the
    # activation memory of batch_size x max_length (loralab.models.memory)
    gradient_checkpointing: StrictBool | Literal["auto"] = "auto"
    # experiment trackers (docs/tracking.md): none by default; tracking_uri is MLflow's
    # tracking URI (default sqlite:///mlflow.db in the working folder), tracking_project the
    # MLflow experiment / W&B or Trackio project (default: the run's, grid's or study's name)
    report_to: list[Tracker] = Field(default_factory=list)
    tracking_uri: str | None = None
    tracking_project: str | None = None

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_name_or_none(cls, value: Any) -> Any:
        """`report_to: mlflow` is a list of one; `none` (the Trainer's word) is no tracker;
        a name given twice counts once."""
        if value is None or value == "none":
            return []
        if isinstance(value, str):
            return [value]
        return list(dict.fromkeys(value)) if isinstance(value, list) else value

    @field_validator("gradient_checkpointing", mode="before")
    @classmethod
    def _true_false_or_auto(cls, value: Any) -> Any:
        if value is True or value is False or value == "auto":
            return value
        raise ValueError(f"expected true, false or auto (got {value!r})")

    @model_validator(mode="before")
    @classmethod
    def _direction_from_the_registry(cls, raw: Any) -> Any:
        """training.greater_is_better was removed: a metric's direction has one source, the
        metric registry. Run folders written before keep loading (they hold `null`)."""
        if isinstance(raw, dict) and "greater_is_better" in raw:
            raw = dict(raw)
            if raw.pop("greater_is_better") is not None:
                raise ValueError(REMOVED_DIRECTION)
        return raw

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
    split_seed: int = Field(default=0, ge=0, le=MAX_SEED)
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
    """Generation-based evaluation of causal LMs (decoding and which examples). `constrain`
    holds every generated answer to a grammar: `json` any JSON object, `json_schema` the
    schema of data.schema_file (null / `none`: free text) — for `loralab eval` (base model
    and adapter alike), `loralab predict` and eval.generate while training."""
    generate: bool = False
    constrain: Literal["json", "json_schema"] | None = None
    max_samples: int | None = Field(default=64, ge=1)
    max_new_tokens: int = Field(default=128, ge=1, le=MAX_LENGTH)
    do_sample: bool = False
    temperature: float = Field(default=1.0, gt=0, le=100)
    top_p: float = Field(default=1.0, gt=0, le=1)
    stop: list[str] = Field(default_factory=list)
    batch_size: int = Field(default=16, ge=1, le=MAX_BATCH)
    code_timeout: float = Field(default=10.0, gt=0, le=86_400)

    @field_validator("constrain", mode="before")
    @classmethod
    def _none_means_free(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.lower() == "none" else value


