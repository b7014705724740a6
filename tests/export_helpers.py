"""Adapters for the export tests: built with loralab's own builder on the tiny models of
conftest, with random non-zero LoRA B (and perturbed head / DoRA magnitudes), so that a merge
that drops, mis-scales or mis-places anything changes the outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from loralab.config import load_config
from loralab.data import load_splits
from loralab.models.adapter_io import save_adapter
from loralab.models.placement import Placement
from loralab.tasks import get_task, load_adapter

LM_TEMPLATE = "message: {message}\nJSON: "
LM_OVERRIDES = ["model.task=causal_lm", f"data.prompt_template={json.dumps(LM_TEMPLATE)}",
                "data.response_template='{output}'", "model.max_length=160"]


def perturb(model: torch.nn.Module, seed: int, scale: float) -> None:
    """Non-zero adapter weights: LoRA B drawn at `scale`, saved copies and magnitudes moved."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "lora_B" in name:
                param.copy_(noise * scale)
            elif "modules_to_save" in name or "lora_magnitude_vector" in name:
                param.mul_(1 + 0.2 * noise)


def make_adapter(folder: Path, base: Path, task: str, train: Path | None = None,
                 dev: Path | None = None, *overrides: str, seed: int = 1,
                 scale: float = 0.1) -> Path:
    data = [f"data.train={train}", f"data.validation={dev}"] if train else []
    config = load_config(None, [f"model.name={base}", f"model.task={task}", *data, "lora.r=4",
                                "lora.alpha=8", "lora.dropout=0", *overrides])
    task_obj = get_task(task, config)
    labels = task_obj.label_names(load_splits(config.data, task_obj.records)["train"], config) \
        if train else None
    built = task_obj.build_model(config, labels, Placement.cpu_fp32())
    perturb(built.model, seed, scale)
    return save_adapter(built.model, built.tokenizer, config, labels, built.model_type, folder)


def encoder_adapters(root: Path, base: Path, tasks: tuple[str, ...]) -> dict[str, Path]:
    """Adapters per encoder task type, on conftest's sentiment and NER data."""
    from conftest import ner_rows, sentiment_rows, write_jsonl

    sentiment = (write_jsonl(root / "train.jsonl", sentiment_rows(60, 0)),
                 write_jsonl(root / "dev.jsonl", sentiment_rows(40, 1)))
    ner = (write_jsonl(root / "ner_train.jsonl", ner_rows(40, 0)),
           write_jsonl(root / "ner_dev.jsonl", ner_rows(20, 1)))
    recipes = {"sequence_classification": (sentiment, []),
               "regression": (sentiment, ["data.columns.label=score"]),
               "token_classification": (ner, [])}
    return {task: make_adapter(root / task, base, task, *recipes[task][0], *recipes[task][1])
            for task in tasks}


def reference_logits(adapter: Path, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    loaded = load_adapter(adapter, device="cpu", dtype=torch.float32)
    with torch.no_grad():
        return loaded.model(**batch, **loaded.task.model_kwargs).logits


def run_cli(*args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loralab", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


def manifest(folder: Path) -> dict:
    return json.loads((folder / "export.json").read_text())
