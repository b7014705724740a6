"""Adapters for the serving tests: built with plain PEFT on tiny random models, with random
non-zero LoRA B (and perturbed heads) so that a wrong adapter or a missing delta shows."""

from __future__ import annotations

import json
from pathlib import Path

import torch

AUTO = {"sequence_classification": "AutoModelForSequenceClassification",
        "regression": "AutoModelForSequenceClassification",
        "token_classification": "AutoModelForTokenClassification",
        "causal_lm": "AutoModelForCausalLM"}
PEFT_TASK = {"sequence_classification": "SEQ_CLS", "regression": "SEQ_CLS",
             "token_classification": "TOKEN_CLS", "causal_lm": "CAUSAL_LM"}


def base_model(base: Path, task: str, labels: list[str] | None):
    import transformers

    cls = getattr(transformers, AUTO[task])
    if task == "causal_lm":
        return cls.from_pretrained(base, dtype=torch.float32)
    return cls.from_pretrained(base, num_labels=len(labels) if labels else 1,
                               dtype=torch.float32)


def make_adapter(base: Path, out: Path, task: str, *, labels: list[str] | None = None,
                 r: int = 4, targets: list[str] = ("query", "value"),
                 modules_to_save: list[str] | None = None, seed: int = 0,
                 rslora: bool = False, alpha: float = 8, loralab_files: bool = True,
                 rank_pattern: dict | None = None, layers: list[int] | None = None) -> Path:
    """A PEFT adapter folder (plus loralab's label_mapping.json unless loralab_files=False)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = base_model(base, task, labels)
    config = LoraConfig(task_type=PEFT_TASK[task], r=r, lora_alpha=alpha,
                        target_modules=list(targets), modules_to_save=modules_to_save,
                        use_rslora=rslora, rank_pattern=rank_pattern or {},
                        layers_to_transform=layers)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "lora_A" in name:
                param.normal_(0, 0.3)
            elif "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.2)
    peft_model.save_pretrained(out)
    if loralab_files:
        mapping = {"task": task, "base_model": str(base), "labels": labels,
                   "max_length": 64}
        (out / "label_mapping.json").write_text(json.dumps(mapping), encoding="utf-8")
    return out


def peft_alone(base: Path, adapter: Path, task: str, labels: list[str] | None):
    """The adapter served alone through plain PEFT: the oracle."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model(base, task, labels), str(adapter)).eval()
