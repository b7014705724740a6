"""Tiny MBPP-shaped data and two-adapter configs (code on attention, docstring on the MLP) for
the multi-adapter and pipeline tests, on the tiny random Llama of conftest.py."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

CODE_PROMPT = "{text}\n"
DOC_PROMPT = "{code}\nDoc: "


def mbpp_rows(seed: int = 0) -> list[dict[str, Any]]:
    """MBPP-shaped tasks in the three standard task-id ranges (test 11-510, validation 511-600,
    train 601-974): `add(x)` functions whose tests pass for the right constant."""
    rng = random.Random(seed)
    ids = [*range(11, 23), *range(511, 521), *range(601, 649)]
    rows = []
    for task_id in ids:
        a = rng.randint(1, 9)
        rows.append({"task_id": task_id, "text": f"Write a function that adds {a} to x.",
                     "code": f"def add(x):\n    return x + {a}",
                     "test_list": [f"assert add(1) == {1 + a}"], "test_setup_code": "",
                     "challenge_test_list": []})
    return rows


def write_mbpp(path: Path, seed: int = 0) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in mbpp_rows(seed)), encoding="utf-8")
    return path


def bilora_raw(model_dir: Path, mbpp: Path, **training: Any) -> dict[str, Any]:
    """A two-adapter config as a mapping: code (attention projections, pass@1) and docstring
    (MLP projections, BLEU / ROUGE-L) on the same MBPP-shaped file."""
    return {
        "name": "bilora",
        "model": {"name": str(model_dir), "task": "causal_lm", "max_length": 96},
        "data": {"train": str(mbpp), "format": "mbpp"},
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-2, "warmup": 0,
                     "logging_steps": 2, **training},
        "eval": {"max_new_tokens": 12},
        "adapters": [
            {"name": "code", "lora": {"preset": "attention", "r": 4, "alpha": 8, "dropout": 0},
             "data": {"prompt_template": CODE_PROMPT, "response_template": "{code}",
                      "metrics": ["code"]}},
            {"name": "docstring", "lora": {"preset": "mlp", "r": 4, "alpha": 8, "dropout": 0},
             "data": {"prompt_template": DOC_PROMPT, "response_template": "{text}",
                      "metrics": ["text"]},
             "training": {"learning_rate": 2e-2}},
        ],
    }


def write_yaml(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path
