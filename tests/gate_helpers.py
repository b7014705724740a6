"""Results files of every shape the gate reads, written small, and a CLI runner for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loralab.cli import main

RUN_METRICS = {
    "name": "mrpc", "task": "sequence_classification", "model": "tiny",
    "adapter": "lora_mrpc_bert_r16", "baseline": False, "metric_for_best": "f1_binary",
    "best_step": 40, "best_epoch": 2, "saved": "best",
    "final": {"accuracy": 0.79, "f1_binary": 0.84, "loss": 0.47},
    "best": {"accuracy": 0.80, "f1_binary": 0.85, "loss": 0.45},
    "test": {"accuracy": 0.78, "f1_binary": 0.83, "loss": 0.50},
    "trivial_baseline": {"accuracy": 0.68, "f1_binary": 0.81},
    "epochs": 3, "train_seconds": 12.5, "epoch_seconds": [4.0, 4.2, 4.3],
    "peak_memory_mb": 812.0, "notes": [], "versions": {"loralab": "0.1.0"},
}
TOKEN_RUN = {**RUN_METRICS, "task": "token_classification", "metric_for_best": "entity_f1",
             "best": {"entity_f1": 0.70, "loss": 0.3, "f1_per_type": {"PERSON": 0.8,
                                                                     "EMAIL": 0.6}},
             "final": {"entity_f1": 0.69}, "test": None, "trivial_baseline": {}}
LORA_RESULTS = {"adapter": "/runs/code/lora_code_llama_r8", "split": "validation",
                "examples": 50, "decoding": {"max_new_tokens": 64, "do_sample": False},
                "model": "lora", "loss": 1.10, "perplexity": 3.00, "pass@1": 0.30,
                "seconds": 9.5}
BASE_RESULTS = {**LORA_RESULTS, "model": "base", "loss": 1.40, "perplexity": 4.05,
                "pass@1": 0.12}
GRID_BEST = {"group_by": ["model", "dataset"], "groups": [
    {"model": "minilm", "dataset": "mrpc", "variant": "r8", "metric": "f1_binary",
     "greater_is_better": True, "mean": 0.86, "std": 0.01, "baseline_mean": 0.80},
    {"model": "Qwen2.5-0.5B", "dataset": "stsb", "variant": "r16", "metric": "pearson",
     "greater_is_better": True, "mean": 0.85, "std": None, "baseline_mean": None}]}
def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def bench(pass_at_1: float = 0.34, rouge: float = 0.41, perplexity: float = 8.5,
          base_pass: float = 0.20) -> dict:
    """A benchmark stage's flat metrics JSON with these numbers."""
    return {"code": {"pass@1": pass_at_1, "code_failures": 12},
            "docstring": {"rougeL": rouge, "bleu": 18.5},
            "validation": {"perplexity": perplexity, "loss": 2.14},
            "base": {"code": {"pass@1": base_pass}, "docstring": {"rougeL": 0.30}}}


def gate(capsys, *args: str) -> tuple[int, str, str]:
    """`loralab gate ARGS` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(["gate", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
           "HF_HUB_OFFLINE": "1"}
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess:
    """The real `python -m loralab` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "loralab", *map(str, args)],
                          capture_output=True, text=True, env=env or cli_env(),
                          timeout=timeout)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under root with its size and mtime: what 'nothing written'
    compares."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1,
                                       p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}
