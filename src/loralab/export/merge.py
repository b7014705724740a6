"""The LoRA merged into the base weights: a plain transformers model that needs no PEFT.

PEFT's own `merge_and_unload` does the arithmetic (scaling, rsLoRA, DoRA's magnitude), always in
fp32; the export dtype is applied after. Around it, checks that a wrong merge cannot slip by:

    untouched    every parameter outside the adapted layers and the saved modules is bit for
                 bit the base model's
    carried      each `modules_to_save` module (the task head, unfrozen layers) is the trained
                 copy, not the base model's original
    vocabulary   the embedding matrix keeps its rows (the tokenizer travels unchanged)
    tied         tied input/output embeddings are still one tensor

A base loaded from GGUF keeps transformers' GGUF quantizer, which refuses `save_pretrained`: the
merged model is rebuilt from its config without `quantization_config` and given the state dict.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch

from loralab.tasks import LoadedAdapter

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TUNER_PARTS = ("lora_", "base_layer", "modules_to_save", "original_module")
SAVED_COPY = ".modules_to_save.default."


@dataclass
class MergedModel:
    model: Any
    notes: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def fingerprint(tensor: torch.Tensor) -> str:
    data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return hashlib.sha256(data).hexdigest()


def base_name(peft_name: str) -> str:
    """A PeftModel parameter's name in the plain model."""
    name = peft_name.removeprefix("base_model.model.")
    return name.replace(SAVED_COPY, ".")


def expected_parameters(peft_model: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Fingerprints of what the merge must leave as it is: (untouched, saved-module copies)."""
    untouched, carried = {}, {}
    for name, param in peft_model.named_parameters():
        if SAVED_COPY in name:
            carried[base_name(name)] = fingerprint(param)
        elif not any(part in name for part in TUNER_PARTS):
            untouched[base_name(name)] = fingerprint(param)
    return untouched, carried


def tied(model: Any) -> bool | None:
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    if out is None or inp is None or not getattr(model.config, "tie_word_embeddings", False):
        return None
    return out.weight is inp.weight


def merge_adapter(loaded: LoadedAdapter, dtype: str) -> MergedModel:
    """Merge `loaded` (the fp32 CPU reference; it is consumed) and check the result."""
    peft_model = loaded.model
    base = peft_model.get_base_model()
    untouched, carried = expected_parameters(peft_model)
    rows = base.get_input_embeddings().weight.shape[0]
    was_tied = tied(base)
    result = MergedModel(peft_model.merge_and_unload(safe_merge=True))
    if getattr(result.model, "hf_quantizer", None) is not None:
        result.model = without_quantizer(result.model)
        result.notes.append("the GGUF base was rebuilt without its quantizer; its weights keep "
                            "the GGUF rounding (de-quantised to fp32 when it loaded)")
    if loaded.config.model.quantization:
        result.notes.append(f"model.quantization={loaded.config.model.quantization}: the merge "
                            "used the base's full-precision weights (model.name), de-quantised "
                            "from the QLoRA form; the adapter was trained on their "
                            f"{loaded.config.model.quantization} rounding, so outputs move "
                            "slightly from the QLoRA model's")
    check_merge(result, untouched, carried, rows, was_tied)
    if loaded.labels:
        result.model.config.id2label = dict(enumerate(loaded.labels))
        result.model.config.label2id = {n: i for i, n in enumerate(loaded.labels)}
    if dtype != "fp32":
        result.model.to(TORCH_DTYPES[dtype])
    result.model.eval()
    return result


def check_merge(result: MergedModel, untouched: dict[str, str], carried: dict[str, str],
                rows: int, was_tied: bool | None) -> None:
    params = dict(result.model.named_parameters(remove_duplicate=False))
    changed = [n for n, h in untouched.items() if n not in params or fingerprint(params[n]) != h]
    lost = [n for n, h in carried.items() if n not in params or fingerprint(params[n]) != h]
    new_rows = result.model.get_input_embeddings().weight.shape[0]
    now_tied = tied(result.model)
    result.checks = {"untouched_parameters": len(untouched) - len(changed),
                     "modules_to_save_parameters": len(carried) - len(lost),
                     "vocab_size": new_rows, "tied_embeddings": now_tied}
    if changed:
        result.problems.append(f"{len(changed)} parameters outside the adapted layers changed "
                               f"in the merge (first: {changed[0]})")
    if lost:
        result.problems.append(f"{len(lost)} modules_to_save parameters are not the trained "
                               f"copy (first: {lost[0]})")
    if new_rows != rows:
        result.problems.append(f"the vocabulary changed from {rows} to {new_rows} rows")
    if was_tied and not now_tied:
        result.problems.append("the input and output embeddings are no longer tied")


def without_quantizer(model: Any) -> Any:
    """The same weights in a freshly built model whose config has no quantization_config."""
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = type(model)(config)
    fresh.load_state_dict(model.state_dict(), strict=True)
    fresh.tie_weights()
    if getattr(model, "generation_config", None) is not None:
        fresh.generation_config = copy.deepcopy(model.generation_config)
    return fresh.eval()
