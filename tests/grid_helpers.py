"""Tiny grid files over the tiny encoder and the sentiment data of conftest."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

BASE = {
    "name": "sentiment",
    "model": {"task": "sequence_classification"},
    "lora": {"r": 4, "alpha": 32, "dropout": 0.0},
    "training": {"epochs": 2, "batch_size": 16, "learning_rate": 5e-3, "logging_steps": 5,
                 "threads": 1},
}


def write_grid(folder: Path, model_dir: Path, train: Path, dev: Path, **grid) -> Path:
    base = json.loads(json.dumps(BASE))
    base["model"]["name"] = str(model_dir)
    base["data"] = {"train": str(train), "validation": str(dev)}
    (folder / "base.yaml").write_text(yaml.safe_dump(base))
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", **grid}, sort_keys=False))
    return path


def statuses(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "runs").glob("*/run.json")}
