"""Exported models on CPU: PyTorch base + adapter vs the merged model vs ONNX Runtime.

Run (offline, from the repository root):

    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/export.py --workdir bench_out/export

encoder  MiniLM-L6 MRPC adapter (--adapter DIR, or one trained here: examples/mrpc_minilm.yaml,
         1 epoch on --train-samples pairs), exported `merged` and `onnx` with `loralab export`
         (their fidelity figures come from export.json: the MRPC validation pairs); then one
         batch of --batch real MRPC dev pairs through each path, --repeats timed runs after 3
         warm-ups: median latency, pairs/s, and that batch's max |Δ logit| / label agreement
         against the PyTorch base + adapter.
causal   SmolLM2-135M-Instruct (GGUF) with a LoRA (r 16 on q/k/v/o, random B: speed does not
         depend on the values), exported `merged`; greedy generation of --new-tokens tokens
         (min = max, so both paths generate the same count) for each of 4 chat prompts, one
         prompt at a time: tokens/s of base + adapter vs merged, and whether the texts agree.

Both paths of a comparison run in this one process with the same torch / ONNX Runtime thread
count (--threads), one after the other.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification  # noqa: E402

from loralab.cli import main as loralab  # noqa: E402
from loralab.export.folders import read_manifest  # noqa: E402
from loralab.export.onnx_model import OnnxModel  # noqa: E402
from loralab.export.source import load_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MRPC_DEV = ROOT.parent / "shared" / "data" / "glue" / "MRPC" / "dev.tsv"
PROMPTS = ["What is the capital of France?", "Extract the name and age as JSON: John is 31.",
           "Write a Python function that reverses a string.",
           "Give three tips for staying focused while studying."]


def timed(fn, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` runs, after 3 warm-up runs."""
    for _ in range(3):
        fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def mrpc_batch(tokenizer, size: int) -> dict[str, torch.Tensor]:
    import csv

    with MRPC_DEV.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:size]
    return dict(tokenizer([r["#1 String"] for r in rows], [r["#2 String"] for r in rows],
                          truncation=True, max_length=128, padding=True, return_tensors="pt"))


def mrpc_adapter(args: argparse.Namespace, work: Path) -> Path:
    if args.adapter:
        return Path(args.adapter)
    run = work / "mrpc_run"
    if not (run / "metrics.json").is_file():
        assert loralab(["train", str(ROOT / "examples" / "mrpc_minilm.yaml"), "--output",
                        str(run), "--no-progress", "--overwrite", "--set", "training.epochs=1",
                        "--set", f"data.max_train_samples={args.train_samples}"]) == 0
    return next(run.glob("lora_*"))


def export(adapter: Path, out: Path, fmt: str) -> dict:
    assert loralab(["export", str(adapter), "--format", fmt, "--output", str(out),
                    "--overwrite"]) == 0
    return read_manifest(out)


def encoder_benchmark(args: argparse.Namespace, work: Path) -> None:
    adapter = mrpc_adapter(args, work)
    manifests = {fmt: export(adapter, work / f"mrpc_{fmt}", fmt) for fmt in ("merged", "onnx")}
    source = load_reference(adapter)
    batch = mrpc_batch(source.tokenizer, args.batch)
    paths = {"PyTorch base + adapter": source.model,
             "PyTorch merged": AutoModelForSequenceClassification.from_pretrained(
                 work / "mrpc_merged").eval(),
             "ONNX Runtime": OnnxModel(work / "mrpc_onnx" / "model.onnx", args.threads)}
    with torch.no_grad():
        reference = source.model(**batch).logits
    print(f"\n## MiniLM-L6 MRPC, batch {args.batch} real dev pairs (padded to "
          f"{batch['input_ids'].shape[1]} tokens), {args.threads} threads, median of "
          f"{args.repeats}")
    print("| path | latency (ms) | pairs/s | vs base + adapter | max |Δ logit| | label agreement |")
    print("|---|---|---|---|---|---|")
    base_seconds = None
    for name, model in paths.items():
        with torch.no_grad():
            seconds = timed(lambda m=model: m(**batch), args.repeats)
            logits = model(**batch).logits
        base_seconds = base_seconds or seconds
        agree = (logits.argmax(-1) == reference.argmax(-1)).float().mean() * 100
        print(f"| {name} | {seconds * 1000:.1f} | {args.batch / seconds:.1f} | "
              f"{base_seconds / seconds:.2f}x | {(logits - reference).abs().max():.2e} | "
              f"{agree:.1f} % |")
    for fmt, info in manifests.items():
        print(f"export {fmt}: fidelity {info['fidelity']['passed'] and 'passed' or 'FAILED'} on "
              f"{info['fidelity_inputs']}: {info['fidelity']['figures']}")


def random_causal_adapter(folder: Path) -> Path:
    """A SmolLM2 LoRA adapter (r 16, alpha 32, q/k/v/o) with random B, saved like a trained one."""
    from loralab.config import load_config
    from loralab.models.adapter_io import save_adapter
    from loralab.models.placement import Placement
    from loralab.tasks import get_task

    if (folder / "adapter_config.json").is_file():
        return folder
    config = load_config(None, ["model.name=HuggingFaceTB/SmolLM2-135M-Instruct",
                                "model.task=causal_lm", "data.chat_template=true", "lora.r=16",
                                "lora.alpha=32", "lora.preset=attention"])
    built = get_task("causal_lm", config).build_model(config, None, Placement.cpu_fp32())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in built.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.01)
    return save_adapter(built.model, built.tokenizer, config, None, built.model_type, folder)


def tokens_per_second(model, tokenizer, prompts: list[str], new_tokens: int
                      ) -> tuple[float, list[str]]:
    texts, seconds = [], 0.0
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            model.generate(**ids, max_new_tokens=2, do_sample=False)  # warm-up
            start = time.perf_counter()
            out = model.generate(**ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None,
                                 pad_token_id=tokenizer.pad_token_id)
            seconds += time.perf_counter() - start
        texts.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:]))
    return len(prompts) * new_tokens / seconds, texts


def causal_benchmark(args: argparse.Namespace, work: Path) -> None:
    adapter = random_causal_adapter(work / "smollm2_adapter")
    info = export(adapter, work / "smollm2_merged", "merged")
    source = load_reference(adapter)
    tokenizer = source.tokenizer
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                             add_generation_prompt=True) for p in PROMPTS]
    adapter_rate, adapter_texts = tokens_per_second(source.model, tokenizer, prompts,
                                                    args.new_tokens)
    del source
    merged = AutoModelForCausalLM.from_pretrained(work / "smollm2_merged",
                                                  dtype=torch.float32).eval()
    merged_rate, merged_texts = tokens_per_second(merged, tokenizer, prompts, args.new_tokens)
    same = sum(a == b for a, b in zip(adapter_texts, merged_texts))
    print(f"\n## SmolLM2-135M-Instruct greedy generation, {len(prompts)} prompts x "
          f"{args.new_tokens} new tokens, batch 1, {args.threads} threads")
    print("| path | tokens/s | vs base + adapter |")
    print("|---|---|---|")
    print(f"| PyTorch base + adapter (PEFT, unmerged) | {adapter_rate:.1f} | 1.00x |")
    print(f"| PyTorch merged | {merged_rate:.1f} | {merged_rate / adapter_rate:.2f}x |")
    print(f"greedy texts equal: {same}/{len(prompts)}; export fidelity "
          f"{info['fidelity']['passed'] and 'passed' or 'FAILED'} on {info['fidelity_inputs']}: "
          f"{info['fidelity']['figures']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["encoder", "causal"],
                        choices=["encoder", "causal"])
    parser.add_argument("--adapter", help="MiniLM MRPC adapter folder (default: train one)")
    parser.add_argument("--train-samples", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="bench_out/export")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    import onnxruntime
    import transformers

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}, transformers "
          f"{transformers.__version__}, onnxruntime {onnxruntime.__version__}")
    if "encoder" in args.parts:
        encoder_benchmark(args, work)
    if "causal" in args.parts:
        causal_benchmark(args, work)


if __name__ == "__main__":
    main()
