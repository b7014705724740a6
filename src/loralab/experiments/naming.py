"""Run identity: a content hash of the resolved config, and a readable name.

The id changes exactly when something that affects the result changes; the run's own name and
its thread count do not count. The name reads like `mrpc-minilm-r8-a16-l6-s0`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from loralab.config import Config

NOT_IDENTITY = ("name", "training.threads")
FAMILIES = ("modernbert", "distilbert", "roberta", "deberta", "minilm", "mpnet", "electra",
            "albert", "bert", "smollm2", "smollm", "qwen3", "qwen2", "qwen", "llama", "mistral",
            "gemma", "phi", "gpt2")
ABBREVIATIONS = {"training.learning_rate": "lr", "lora.dropout": "do", "training.epochs": "ep",
                 "training.batch_size": "bs", "training.weight_decay": "wd",
                 "training.warmup": "wu", "lora.lambda_reg": "lam",
                 "training.unfreeze_top_layers": "unfreeze", "model.max_length": "len"}
NAMED_ELSEWHERE = ("lora.r", "lora.alpha", "lora.layers", "training.seed", "lora.enabled")


def run_id(config: Config) -> str:
    """Defaults are left out, so a loralab upgrade that adds a key keeps the old ids."""
    data = config.model_dump(mode="json", exclude_defaults=True)
    for key in NOT_IDENTITY:
        section, _, leaf = key.rpartition(".")
        (data.get(section, {}) if section else data).pop(leaf, None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._+]+", "-", str(text).lower()).strip("-") or "x"


def model_label(name: str) -> str:
    """A short label for a model id or folder: the family if one is recognised."""
    base = Path(name.rstrip("/")).name.lower().removesuffix(".gguf")
    for family in FAMILIES:
        if family in base.replace("-", ""):
            return family
    return slug(base.removesuffix("-uncased").removesuffix("-cased"))


def dataset_label(config: Config) -> str:
    data = config.data
    if data.hub:
        return slug(data.hub_config or Path(data.hub).name)
    if data.train:
        path = Path(data.train)
        folder = path.parent.name
        generic = {"data", "dataset", "datasets", "", ".", "train"}
        return slug(path.stem if folder.lower() in generic else folder)
    return slug(config.model.task)


def layers_fragment(layers: Any) -> str:
    if isinstance(layers, list):
        return "l" + "_".join(str(i) for i in layers)
    return f"l{layers}"


def value_fragment(key: str, value: Any) -> str:
    """`lr0.001`, `weighted`, `dropout0.1`: one varying key in a run name."""
    if isinstance(value, bool):
        leaf = key.rpartition(".")[2].removeprefix("use_")
        return leaf if value else f"no-{leaf}"
    if isinstance(value, list):
        value = "+".join(str(v) for v in value)
    if isinstance(value, float):
        value = f"{value:g}"
    if key in ABBREVIATIONS:
        return f"{ABBREVIATIONS[key]}{value}"
    if isinstance(value, str) and key.startswith("lora."):
        return slug(value)
    return f"{key.rpartition('.')[2]}{value}"


def run_name(config: Config, model: str, dataset: str, varying: dict[str, Any],
             baseline: bool) -> str:
    parts = [dataset, model]
    if baseline:
        parts.append("baseline")
    else:
        lora = config.lora
        parts += [f"r{lora.r}", f"a{lora.alpha:g}", layers_fragment(lora.layers)]
        parts += [value_fragment(k, v) for k, v in varying.items() if k not in NAMED_ELSEWHERE]
    parts.append(f"s{config.training.seed}")
    return "-".join(slug(p) for p in parts)
