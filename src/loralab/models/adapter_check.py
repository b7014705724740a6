"""Is an adapter folder's weights file what its adapter_config.json says? Checked from the
safetensors header alone (no tensor is read, no model is loaded), before anything loads it:

    check_adapter_weights(path)   UserError naming the file and what is wrong:
        - no weights file, or one that is not safetensors / is truncated
        - a LoRA module whose A and B ranks disagree with `r` (or its `rank_pattern` entry)
        - an A without its B (or the reverse), or no LoRA weights at all

`loralab predict` / `eval` / `export` (through loralab.models.adapter_io.read_adapter_files)
and the server's adapter loading call it, so a folder plain PEFT refuses is never used.
Shapes that only the base model can check (in / out features) are checked when the adapter is
attached (loralab.models.adapter_io.attach_adapter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.errors import UserError

WEIGHTS_FILE = "adapter_model.safetensors"
PICKLED_WEIGHTS = "adapter_model.bin"   # older PEFT folders; torch reads it at attach time


def check_adapter_weights(path: Path, peft_config: dict[str, Any] | None = None) -> None:
    """Refuse an adapter folder whose weights file is unreadable or does not match its
    adapter_config.json (`peft_config`: the parsed file, read from `path` when None)."""
    path = Path(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        if (path / PICKLED_WEIGHTS).is_file():
            return
        raise UserError(f"{path}: no adapter weights ({WEIGHTS_FILE} is missing)")
    shapes = header_shapes(weights)
    config = peft_config if peft_config is not None else read_json_config(path)
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        return  # other PEFT methods: their own loader checks them
    check_lora_ranks(weights, shapes, config)


def header_shapes(weights: Path) -> dict[str, list[int]]:
    """{tensor name: shape} from a safetensors file's header; UserError for a file that is
    not safetensors, is cut short, or cannot be read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), "pt") as handle:
            return {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{weights}: not a readable safetensors file, truncated or corrupt "
                        f"({reason})") from None


def check_lora_ranks(weights: Path, shapes: dict[str, list[int]],
                     config: dict[str, Any]) -> None:
    modules: dict[str, dict[str, list[int]]] = {}
    for key, shape in shapes.items():
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in key:
                modules.setdefault(key.split(marker)[0], {})[part] = shape
    if not modules:
        raise UserError(f"{weights}: holds no LoRA weights (no lora_A / lora_B tensors)")
    pattern = config.get("rank_pattern") or {}
    for module, pair in sorted(modules.items()):
        missing = {"lora_A", "lora_B"} - set(pair)
        if missing:
            raise UserError(f"{weights}: {module} has no {missing.pop()} weight")
        expected = int(pattern.get(pattern_key(list(pattern), module), config.get("r", 8)))
        a_rank, b_rank = pair["lora_A"][0], pair["lora_B"][-1]
        if len(pair["lora_A"]) < 2 or a_rank != expected or b_rank != expected:
            raise UserError(
                f"{weights}: {module} has LoRA rank {a_rank} (A {pair['lora_A']}, B "
                f"{pair['lora_B']}) but adapter_config.json says r={expected}: the weights do "
                "not belong to this config")


def pattern_key(patterns: list[str], module: str) -> str | None:
    """PEFT's rule for which `rank_pattern` key applies to a module (None: none does)."""
    if not patterns:
        return None
    from peft.utils.other import get_pattern_key

    key = get_pattern_key(patterns, module.removeprefix("base_model.model."))
    return key if key in patterns else None


def read_json_config(path: Path) -> dict[str, Any]:
    import json

    file = path / "adapter_config.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{file}: not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise UserError(f"{file}: expected a JSON object")
    return config
