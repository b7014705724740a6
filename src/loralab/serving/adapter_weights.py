"""Read a PEFT LoRA adapter folder's weights directly: `adapter_config.json` +
`adapter_model.safetensors`, mapped onto the base model's module names.

PEFT saves LoRA weights as `base_model.model.<module>.lora_A.weight` ([r, in]) and
`...lora_B.weight` ([out, r]), and each module of `modules_to_save` as
`base_model.model.<module>.<param>`. Scaling is PEFT's: alpha / r, or alpha / sqrt(r) with
rsLoRA; `rank_pattern` / `alpha_pattern` are honoured per module. Features whose numbers this
engine would get wrong are refused with a message instead of served (DoRA, LoRA biases, bias
training, embedding LoRA, trainable tokens, layer replication, aLoRA).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from loralab.errors import UserError

PREFIX = "base_model.model."
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"

# (config key, value that is fine, why any other value is refused)
UNSUPPORTED = (
    ("use_dora", False, "DoRA adapters rescale each output by a per-adapter weight norm that "
                        "a shared base matmul cannot apply; merge it (PEFT merge_and_unload) "
                        "or serve it with plain PEFT"),
    ("lora_bias", False, "LoRA-B biases (lora_bias=true) are not served"),
    ("bias", "none", "adapters that train the base layers' biases (bias != none) are not "
                     "served"),
    ("layer_replication", None, "layer_replication changes the model's depth"),
    ("trainable_token_indices", None, "trainable token embeddings are not served"),
    ("alora_invocation_tokens", None, "activated LoRA (aLoRA) is not served"),
    ("target_parameters", None, "LoRA on parameters (target_parameters) is not served"),
)


@dataclass
class LoraPair:
    a: torch.Tensor        # [r, in]
    b: torch.Tensor        # [out, r]
    scaling: float

    @property
    def rank(self) -> int:
        return self.a.shape[0]


@dataclass
class AdapterWeights:
    path: Path
    config: dict[str, Any]
    lora: dict[str, LoraPair] = field(default_factory=dict)            # module -> A, B
    saved: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # module -> params

    @property
    def rank(self) -> int:
        return max((p.rank for p in self.lora.values()), default=0)

    @property
    def target_modules(self) -> list[str]:
        return sorted(self.lora)


def read_peft_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    if not file.is_file():
        raise UserError(f"{path} is not an adapter folder (no {CONFIG_FILE})")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise UserError(f"{file}: expected a JSON object")
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise UserError(f"{path}: a {peft_type} adapter; only LoRA adapters are served")
    for key, fine, why in UNSUPPORTED:
        value = config.get(key)
        if value and value != fine:
            raise UserError(f"{path}: {key}={value!r}: {why}")
    return config


def pattern_value(pattern: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's rank_pattern / alpha_pattern lookup (a key matches a module-name suffix)."""
    from peft.utils.other import get_pattern_key

    if not pattern:
        return default
    key = get_pattern_key(list(pattern), module)
    return pattern.get(key, default)


def scaling_for(config: dict[str, Any], module: str, rank: int) -> float:
    alpha = float(pattern_value(config.get("alpha_pattern") or {}, module,
                                config.get("lora_alpha", 8)))
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def read_adapter_weights(path: Path, module_names: set[str]) -> AdapterWeights:
    """The adapter's LoRA pairs and saved modules, keyed by the base model's module names."""
    from safetensors.torch import load_file

    config = read_peft_config(path)
    file = path / WEIGHTS_FILE
    if not file.is_file():
        other = "adapter_model.bin" if (path / "adapter_model.bin").is_file() else None
        hint = f" ({other} found: re-save it as safetensors)" if other else ""
        raise UserError(f"{path}: no {WEIGHTS_FILE}{hint}")
    try:
        state = load_file(str(file))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds
        raise UserError(f"{file}: cannot read ({exc})") from None
    weights = AdapterWeights(path, config)
    lora: dict[str, dict[str, torch.Tensor]] = {}
    saved_names = [str(n) for n in config.get("modules_to_save") or []]
    for key, tensor in state.items():
        name = key.removeprefix(PREFIX)
        if ".lora_embedding_" in name or ".lora_magnitude_vector" in name:
            raise UserError(f"{path}: {name}: embedding LoRA / DoRA weights are not served")
        if ".lora_A." in name or ".lora_B." in name:
            module, _, rest = name.partition(".lora_")
            part = rest.split(".")[0]             # "A" or "B"
            if not rest.endswith(".weight"):
                raise UserError(f"{path}: {name}: LoRA biases are not served")
            lora.setdefault(module, {})[part] = tensor
            continue
        module = saved_module(name, saved_names, module_names)
        if module is None:
            raise UserError(f"{path}: weight {name!r} belongs to no LoRA layer and no module "
                            "of modules_to_save in this base model")
        weights.saved.setdefault(module, {})[name[len(module) + 1:]] = tensor
    for module, parts in lora.items():
        if module not in module_names:
            raise UserError(f"{path}: LoRA layer {module!r} is not a module of the base model "
                            "(an adapter for another architecture?)")
        if set(parts) != {"A", "B"}:
            raise UserError(f"{path}: LoRA layer {module!r} lacks its lora_A or lora_B weight")
        rank = parts["A"].shape[0]
        weights.lora[module] = LoraPair(parts["A"], parts["B"], scaling_for(config, module, rank))
    check_overlap(weights)
    return weights


def saved_module(name: str, saved_names: list[str], module_names: set[str]) -> str | None:
    """The module of modules_to_save that parameter `name` belongs to (the outermost match)."""
    parts = name.split(".")
    for end in range(1, len(parts)):
        candidate = ".".join(parts[:end])
        if candidate in module_names and any(candidate == s or candidate.endswith("." + s)
                                             for s in saved_names):
            return candidate
    return None


def check_overlap(weights: AdapterWeights) -> None:
    for module in weights.lora:
        for saved in weights.saved:
            if module.startswith(saved + "."):
                raise UserError(f"{weights.path}: LoRA layer {module!r} lies inside its own "
                                f"saved module {saved!r}; such adapters are not served")
