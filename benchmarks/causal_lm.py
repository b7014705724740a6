"""Causal LM LoRA with the offline SmolLM2-135M-Instruct: plain PEFT + Trainer vs loralab, and
the base model vs the trained adapter on generated answers.

Run (offline, from the repository root, nothing else running):

    HF_HUB_OFFLINE=1 python benchmarks/causal_lm.py --tasks json xquad --train-samples 160 \
        --eval-samples 64 --workdir bench_out/causal

json   synthetic JSON extraction (`loralab data synth json-extraction --n 1000 --seed 0`),
       examples/json_extraction_smollm2.yaml: valid JSON, schema compliance, intent accuracy,
       entity F1
xquad  XQuAD English from ../shared/data, examples/xquad_smollm2.yaml: SQuAD EM and F1

For each task, loralab trains the example config on the first `--train-samples` examples
(seeded sample) and `loralab eval --baseline`'s code scores the base model and the adapter on the
same `--eval-samples` validation examples with the same greedy decoding. With `--plain`
(the json task), plain PEFT + transformers.Trainer trains the same LoRA (targets, r, alpha,
lr, epochs, batch, seed) on the same tokenised examples padded to model.max_length, the usual
fixed-shape SFT batches, and the script prints the training-time ratio.
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

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments  # noqa: E402

from loralab.config import load_config  # noqa: E402
from loralab.data.synth_json import write_json_extraction_dataset  # noqa: E402
from loralab.evaluation.eval_run import run_eval  # noqa: E402
from loralab.models.causal import load_causal_model  # noqa: E402
from loralab.models.placement import Placement  # noqa: E402
from loralab.training.recipe import TrainingRecipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"json": ROOT / "examples" / "json_extraction_smollm2.yaml",
            "xquad": ROOT / "examples" / "xquad_smollm2.yaml"}
SHOWN = {"json": ("valid_json", "schema_compliance", "intent_accuracy", "json_entity_f1",
                  "loss"),
         "xquad": ("exact_match", "qa_f1", "loss")}


def task_config(task: str, args: argparse.Namespace, out: Path):
    overrides = [f"data.max_train_samples={args.train_samples}",
                 f"data.max_eval_samples={args.eval_samples}",
                 f"eval.max_samples={args.eval_samples}", "eval.generate=false",
                 "training.metric_for_best=loss"]
    if task == "json":
        data = out / "json_data"
        write_json_extraction_dataset(data, 1000, seed=0)
        overrides += [f"data.train={data / 'train.jsonl'}",
                      f"data.validation={data / 'eval.jsonl'}",
                      f"data.schema_file={data / 'schema.json'}"]
    return load_config(EXAMPLES[task], overrides)


def train_loralab(config, out: Path) -> tuple[TrainingRecipe, dict]:
    recipe = TrainingRecipe(config, out, progress=False, overwrite=True)
    metrics = recipe.run_all()
    return recipe, metrics


def train_plain(config, recipe: TrainingRecipe, out: Path) -> dict:
    """PEFT + Trainer on the same examples, padded to max_length (fixed-shape batches)."""
    torch.manual_seed(config.training.seed)
    model = load_causal_model(config, placement=Placement.resolve())
    # a GGUF model keeps its (de-quantising) loader's quantizer, which Trainer refuses to train;
    # the weights are plain fp32 by now, which is what loralab trains too
    model.hf_quantizer, model.is_quantized = None, False
    lora = LoraConfig(task_type="CAUSAL_LM", r=config.lora.r, lora_alpha=config.lora.alpha,
                      lora_dropout=config.lora.dropout, target_modules=recipe.built.target_modules)
    model = get_peft_model(model, lora)
    features = [{k: f[k] for k in ("input_ids", "attention_mask", "labels")}
                for f in recipe.features["train"]]
    collator = DataCollatorForSeq2Seq(recipe.built.tokenizer, padding="max_length",
                                      max_length=config.model.max_length)
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=config.training.batch_size,
        num_train_epochs=config.training.epochs, learning_rate=config.training.learning_rate,
        warmup_steps=config.training.warmup, lr_scheduler_type="linear",
        weight_decay=config.training.weight_decay, logging_steps=10, save_strategy="no",
        report_to=[], seed=config.training.seed, use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=features, data_collator=collator)
    started = time.perf_counter()
    result = trainer.train()
    return {"train_seconds": round(time.perf_counter() - started, 1),
            "train_loss": round(result.training_loss, 4),
            "tokens_per_step": config.training.batch_size * config.model.max_length}


def compare(config, recipe: TrainingRecipe, args: argparse.Namespace, out: Path) -> dict:
    model = recipe.accelerator.unwrap_model(recipe.model)
    records = recipe.splits["validation"][:args.eval_samples]
    cfg = config.model_copy(update={"eval": config.eval.model_copy(
        update={"max_samples": args.eval_samples})})
    return run_eval(model, recipe.built.tokenizer, recipe.task, records, cfg, labels=None,
                    baseline=True, has_adapter=True, output=out, progress=False,
                    source={"split": "validation"})


def run_task(task: str, args: argparse.Namespace) -> dict:
    out = Path(args.workdir).resolve() / task
    config = task_config(task, args, out)
    recipe, metrics = train_loralab(config, out / "loralab")
    tokens = sum(len(f["input_ids"]) for f in recipe.features["train"])
    row = {"task": task, "train_examples": len(recipe.features["train"]),
           "loralab_train_seconds": metrics["train_seconds"], "train_tokens": tokens,
           "loralab_tokens_per_second": round(tokens * metrics["epochs"]
                                              / metrics["train_seconds"], 1)}
    if not args.no_compare:
        results = compare(config, recipe, args, out / "eval")
        row["base"] = {k: results["baseline"].get(k) for k in SHOWN[task]}
        row["lora"] = {k: results["lora"].get(k) for k in SHOWN[task]}
    if args.plain and task == "json":
        plain = train_plain(config, recipe, out / "plain")
        row["plain"] = plain
        row["speedup"] = round(plain["train_seconds"] / metrics["train_seconds"], 2)
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["json", "xquad"], choices=list(EXAMPLES))
    parser.add_argument("--train-samples", type=int, default=160)
    parser.add_argument("--eval-samples", type=int, default=64)
    parser.add_argument("--plain", action="store_true",
                        help="also train with plain PEFT + Trainer (json) and print the ratio")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the base-vs-LoRA generation evaluation (timing only)")
    parser.add_argument("--workdir", default="bench_out/causal")
    args = parser.parse_args(argv)
    rows = [run_task(task, args) for task in args.tasks]
    for row in rows:
        print(f"\n{row['task']}: {row['train_examples']} training examples, loralab "
              f"{row['loralab_train_seconds']:.0f} s")
        for key in SHOWN[row["task"]] if "base" in row else ():
            base, lora = row["base"][key], row["lora"][key]
            if base is not None and lora is not None:
                print(f"  {key:<18} base {base:8.4f}   LoRA {lora:8.4f}   delta {lora - base:+.4f}")
        if "plain" in row:
            print(f"  plain PEFT + Trainer {row['plain']['train_seconds']:.0f} s -> loralab is "
                  f"{row['speedup']:.2f}x faster")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    (Path(args.workdir) / "results.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
