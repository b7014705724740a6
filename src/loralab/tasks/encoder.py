"""What the encoder tasks share: a pretrained encoder with a task head and a LoRA adapter,
loaded for inference in fp32, predicting one batch of logits at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from loralab.config import Config
from loralab.data.batches import model_inputs_collator
from loralab.data.spec import RecordSpec
from loralab.models.adapter_io import attach_adapter, load_encoder
from loralab.models.build import BuiltModel, build_encoder_model
from loralab.models.placement import Placement
from loralab.models.tokenizer import folder_has_tokenizer, load_tokenizer
from loralab.tasks.base import ServingBase, Task


class EncoderTask(Task):
    """Sequence classification, regression and token classification."""

    def head_kwargs(self, labels: list[str] | None) -> dict[str, Any]:
        """from_pretrained arguments that size the head: one output per label."""
        if labels is None:           # a base encoder served alone: its config's head size
            return {}
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {n: i for i, n in enumerate(labels)}}

    def build_model(self, config: Config, labels: list[str] | None,
                    placement: Placement) -> BuiltModel:
        return build_encoder_model(config, self.auto_model_class, self.peft_task_type,
                                   self.head_kwargs(labels))

    def load_model(self, config: Config, labels: list[str] | None, adapter: Path | None,
                   placement: Placement) -> tuple[torch.nn.Module, Any]:
        model = load_encoder(config.model.name, self.auto_model_class, self.head_kwargs(labels),
                             placement, trust_remote_code=config.model.trust_remote_code)
        if adapter is not None:
            model = attach_adapter(model, adapter).to(placement.device)
        if adapter is not None and folder_has_tokenizer(adapter):
            tokenizer = load_tokenizer(config.model.name, source=str(adapter))
        else:
            tokenizer = load_tokenizer(config.model.name, revision=config.model.revision,
                                       trust_remote_code=config.model.trust_remote_code)
        return model.eval(), tokenizer

    def load_serving_base(self, config: Config, labels: list[str] | None,
                          placement: Placement) -> ServingBase:
        """The encoder with this task's head class, sized by the first adapter's labels (each
        adapter brings its own saved head); fp32 unless the placement names a dtype."""
        import logging

        import transformers

        from loralab.models.build import new_module_names
        from loralab.models.sources import model_load_error, resolve_model_source

        logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
        auto_cls = getattr(transformers, self.auto_model_class)
        try:
            model, info = auto_cls.from_pretrained(
                resolve_model_source(config.model.name), revision=config.model.revision,
                dtype=placement.dtype or torch.float32, output_loading_info=True,
                trust_remote_code=config.model.trust_remote_code, **self.head_kwargs(labels))
        except (OSError, ValueError) as exc:
            raise model_load_error(config.model.name, exc) from None
        tokenizer = load_tokenizer(config.model.name, revision=config.model.revision,
                                   trust_remote_code=config.model.trust_remote_code)
        heads = new_module_names(model, info.get("missing_keys", []))
        return ServingBase(model.to(placement.device).eval(), tokenizer, heads)

    @property
    def input_spec(self) -> RecordSpec:
        """Prediction inputs are texts (and text pairs), whatever the task trains on."""
        return RecordSpec(self.name, "sentences")

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, tokenizer: Any, records: list[dict[str, Any]],
                config: Config, labels: list[str] | None,
                batch_size: int) -> Iterator[dict[str, Any]]:
        collate = model_inputs_collator(self.collator(tokenizer))
        device = next(model.parameters()).device
        for start in range(0, len(records), batch_size):
            chunk = records[start:start + batch_size]
            features = self.encode(chunk, tokenizer, labels, config.model.max_length)
            batch = collate(features)
            batch.pop("labels", None)
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            for i, (record, feature) in enumerate(zip(chunk, features)):
                shown = {k: v for k, v in record.items() if k in ("text", "text_pair") and v}
                yield {**shown, **self.render(logits[i], record, feature, labels)}
