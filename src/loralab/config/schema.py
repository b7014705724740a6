"""The whole config: four sections (`model`, `lora`, `training`, `data`) plus `eval`, an
optional run `name`, an optional LLM `judge` and, instead of `lora`, `adapters:` (several
adapters trained one after the other on one base model). The rules that span sections live
here; each section's own rules live with it in loralab.config.sections."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_serializer, model_validator

from loralab.config.adapter_entries import AdapterEntry, check_adapters
from loralab.config.adapters import adapter_configs
from loralab.config.judge import JudgeConfig
from loralab.config.section import Section
from loralab.config.sections import (
    DataConfig,
    EvalConfig,
    LoraConfig,
    ModelConfig,
    TrainingConfig,
)

CAUSAL_ONLY = {"data.prompt_template", "data.response_template", "data.chat_template",
               "data.system_prompt", "data.packing", "data.metrics", "data.schema_file",
               "model.gguf_file", "model.quantization", "eval.generate", "eval.constrain"}


class Config(Section):
    name: str | None = None
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    judge: JudgeConfig | None = None
    adapters: list[AdapterEntry] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _usable_in_file_names(cls, name: str | None) -> str | None:
        """The name becomes part of folder names (lora_{name}_..., runs/{name}-...)."""
        if name is not None and (not name.strip() or name in (".", "..") or any(
                c in name for c in "/\\\0") or not name.isprintable()):
            raise ValueError(f"{name!r} cannot be part of a folder name: give a name without "
                             "/, \\, control characters or surrounding blanks")
        if name is not None and name != name.strip():
            raise ValueError(f"{name!r} has blanks around it; remove them")
        return name

    @model_validator(mode="after")
    def _several_adapters(self) -> Config:
        if self.adapters:
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
            if self.eval.constrain == "json_schema" and not self.data.schema_file:
                raise ValueError("eval.constrain=json_schema needs data.schema_file: the JSON "
                                 "Schema every generated answer must follow (or "
                                 "eval.constrain=json for any JSON object)")
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
        if self.training.gradient_checkpointing is True:  # auto and false: nothing to do
            raise ValueError("training.gradient_checkpointing=true is for model.task=causal_lm "
                             f"(this config's task is {self.model.task})")
        return self

    @property
    def run_name(self) -> str:
        return self.name or self.model.task

    def adapter_configs(self) -> list[tuple[str, Config]]:
        """(name, the resolved single-adapter config) of every `adapters:` entry, in order."""
        return adapter_configs(self)
