"""Encoder LoRA training on CPU: plain PEFT + Trainer (fixed 128-token padding) vs loralab.

Run (offline, from the repository root):

    HF_HUB_OFFLINE=1 python benchmarks/encoder_training.py --tasks mrpc stsb --epochs 3

Both paths train the offline MiniLM encoder (sentence-transformers/all-MiniLM-L6-v2) on the full
GLUE train set from ../shared/data and evaluate on dev, in this one process, with the same
hyper-parameters, seed, LoRA targets and trainable head. The only differences are loralab's:
dynamic padding and length-grouped batches. Also runs loralab's `weighted` LoRA variant
(job 1's research question) with the same seed. Prints a table with the per-epoch time ratio
and writes the results as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from peft import LoraConfig, TaskType, get_peft_model  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from loralab.config import validate_config  # noqa: E402
from loralab.data import load_splits  # noqa: E402
from loralab.metrics.scores import classification_metrics, regression_metrics  # noqa: E402
from loralab.models.sources import DEFAULT_ENCODER, resolve_model_source  # noqa: E402
from loralab.tasks import get_task  # noqa: E402
from loralab.training.recipe import train  # noqa: E402

TARGETS = ["query", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
HEAD = ["pooler", "classifier"]
TASKS = {
    "mrpc": ("MRPC", "sequence_classification", "f1_binary"),
    "stsb": ("STS-B", "regression", "pearson"),
}


def shared_data() -> Path:
    path = Path(os.environ.get("LORALAB_SHARED_DATA",
                               Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (path / "glue").is_dir():
        sys.exit(f"GLUE data not found under {path}; set LORALAB_SHARED_DATA")
    return path


def raw_config(task: str, args: argparse.Namespace, method: str = "standard") -> dict:
    folder, task_type, metric = TASKS[task]
    glue = shared_data() / "glue" / folder
    lora = {"r": 16, "alpha": 32, "dropout": 0.1, "method": method}
    if method == "weighted":
        lora.update(scale_factor=args.scale_factor, output_dropout=args.output_dropout,
                    lambda_reg=args.lambda_reg)
    return {
        "name": task,
        "model": {"name": DEFAULT_ENCODER, "task": task_type, "max_length": 128},
        "lora": lora,
        "training": {"epochs": args.epochs, "batch_size": args.batch_size,
                     "learning_rate": args.lr, "warmup": 0.06, "weight_decay": 0.01,
                     "seed": args.seed, "metric_for_best": metric, "logging_steps": 20},
        "data": {"train": str(glue / "train.tsv"), "validation": str(glue / "dev.tsv"),
                 "max_train_samples": args.max_train_samples},
    }


class EpochTimer(TrainerCallback):
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds.append(round(time.perf_counter() - self._start, 3))


def plain_peft_trainer(task: str, args: argparse.Namespace, workdir: Path) -> dict:
    """The script a PEFT user writes: pad to 128, Trainer, evaluate each epoch."""
    config = validate_config(raw_config(task, args))
    splits = load_splits(config.data, get_task(config.model.task).records)  # loralab's rows
    regression = config.model.task == "regression"
    labels = None if regression else sorted({r["label"] for r in splits["train"]})
    source = resolve_model_source(DEFAULT_ENCODER)
    tokenizer = AutoTokenizer.from_pretrained(source)

    def encode(records):
        enc = tokenizer([r["text"] for r in records], [r["text_pair"] for r in records],
                        truncation=True, padding="max_length", max_length=128)
        gold = [float(r["label"]) if regression else labels.index(r["label"]) for r in records]
        return [{**{k: enc[k][i] for k in enc}, "labels": gold[i]} for i in range(len(records))]

    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=1 if regression else len(labels))
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=16, lora_alpha=32,
                                             lora_dropout=0.1, target_modules=TARGETS,
                                             modules_to_save=HEAD))

    def compute_metrics(pred):
        logits, gold = pred
        if regression:
            return regression_metrics(np.asarray(logits).reshape(-1), gold)
        return classification_metrics(np.argmax(logits, -1), gold, len(labels))

    timer = EpochTimer()
    training_args = TrainingArguments(
        output_dir=str(workdir / f"plain-{task}"), per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64, learning_rate=args.lr, num_train_epochs=args.epochs,
        warmup_steps=0.06, weight_decay=0.01, lr_scheduler_type="linear",
        eval_strategy="epoch", save_strategy="no", logging_steps=20, report_to=[],
        seed=args.seed, use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=training_args, train_dataset=encode(splits["train"]),
                      eval_dataset=encode(splits["validation"]), callbacks=[timer],
                      compute_metrics=compute_metrics)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    metric = TASKS[task][2]
    best = max(evals, key=lambda h: h[f"eval_{metric}"])
    return {"epoch_seconds": timer.seconds, "train_seconds": round(seconds, 3),
            "best": {k.removeprefix("eval_"): v for k, v in best.items()
                     if k.startswith("eval_")}, "final": evals[-1]}


def loralab_run(task: str, args: argparse.Namespace, workdir: Path, method: str) -> dict:
    config = validate_config(raw_config(task, args, method))
    metrics = train(config, workdir / f"loralab-{method}-{task}", progress=False,
                    overwrite=True)
    return {k: metrics[k] for k in ("epoch_seconds", "train_seconds", "best", "final")}


def mean_epoch(result: dict) -> float:
    return float(np.mean(result["epoch_seconds"]))


def report(results: dict) -> str:
    lines = ["| task | path | metric | best | mean epoch (s) | speed-up vs plain |",
             "|---|---|---|---|---|---|"]
    for task, runs in results.items():
        metric = TASKS[task][2]
        plain = runs.get("plain")
        for name, result in runs.items():
            speed = f"{mean_epoch(plain) / mean_epoch(result):.2f}x" if plain else "-"
            lines.append(f"| {task} | {name} | {metric} | {result['best'][metric]:.4f} | "
                         f"{mean_epoch(result):.1f} | {speed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"], choices=list(TASKS))
    parser.add_argument("--paths", nargs="+", default=["plain", "standard", "weighted"],
                        choices=["plain", "standard", "weighted"])
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--output-dropout", type=float, default=0.1)
    parser.add_argument("--lambda-reg", type=float, default=0.01)
    parser.add_argument("--workdir", default="bench_out")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    results: dict[str, dict] = {}
    for task in args.tasks:
        results[task] = {}
        for path in args.paths:
            print(f"== {task}: {path}", flush=True)
            results[task][path] = (plain_peft_trainer(task, args, workdir) if path == "plain"
                                   else loralab_run(task, args, workdir, path))
            print(json.dumps(results[task][path]["best"]), flush=True)
    print(report(results))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "encoder_training.json").write_text(json.dumps(
        {"args": vars(args), "torch_threads": torch.get_num_threads(), "results": results},
        indent=2))


if __name__ == "__main__":
    main()
