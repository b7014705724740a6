"""Mixed-adapter serving: base model alone vs loralab's mixed batch vs PEFT `adapter_names`.

Run (offline, from the repository root):

    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/serving.py engine   # (a) MiniLM-L6, CPU
    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/serving.py http     # (b) 32 clients, 16 adapters
    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/serving.py generate # (c) SmolLM2, 4 adapters
    HF_HUB_OFFLINE=1 python benchmarks/serving.py gpu                 # Llama-shaped 1.1B on CUDA

(a) engine only: a batch of 64 real MRPC pairs (../shared/data/glue/MRPC/dev.tsv) through the
    offline MiniLM-L6 with the base model alone, then with LoRA r16 on its five default targets
    (query, value, attention.output.dense, intermediate.dense, output.dense) plus a per-adapter
    pooler + classifier, rows spread over 1, 4, 16 and 64 distinct adapters: loralab's engine
    (stacked A/B, per-row gather, batched matmuls) and PEFT's `adapter_names` (its Python loop
    over adapters), each as a fraction of the base model's rows/s, next to the arithmetic limit
    1 - (LoRA FLOPs / all FLOPs) of the same batch. Variants are timed in interleaved rounds
    (median of --rounds), so drifting machine load hits them alike.
(b): see benchmarks/serving_load.py; (c): benchmarks/serving_generation.py.
gpu: the same comparison with a Llama-shaped 1.1B model built from a config (random weights:
    throughput does not depend on them), batch 64 x 256 tokens, LoRA r16 on q/k/v/o, bf16, for
    one prefill and one decode step (KV cache of 256); skips with a message without CUDA.
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from loralab.serving.adapter_weights import AdapterWeights, LoraPair  # noqa: E402
from loralab.serving.engine import MixedEngine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_TARGETS = ["attention.self.query", "attention.self.value", "attention.output.dense",
                  "intermediate.dense", "output.dense"]
# PEFT's adapter_names path mixes only Linear/Embedding/Conv modules_to_save, not BertPooler
# (dense + tanh), so the per-adapter pooler is saved as its dense layer here (same weights)
MINILM_HEADS = ["pooler.dense", "classifier"]
COUNTS = (1, 4, 16, 64)


def shared_data() -> Path:
    env = os.environ.get("LORALAB_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def mrpc_pairs(n: int) -> list[tuple[str, str]]:
    path = shared_data() / "glue" / "MRPC" / "dev.tsv"
    with open(path, encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(r[3], r[4]) for r in rows[:n]]


# ---------------------------------------------------------------------------- adapters
def peft_with_adapters(model: torch.nn.Module, count: int, targets: list[str],
                       saved: list[str] | None, task_type: str, r: int = 16):
    """`count` random adapters (non-zero B, perturbed heads) in one PeftModel."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets, modules_to_save=saved,
                        task_type=task_type, lora_dropout=0.0)
    peft = get_peft_model(model, config, adapter_name="a0")
    for i in range(1, count):
        peft.add_adapter(f"a{i}", config)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
            elif "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.01)
    return peft.eval()


def weights_of(peft, name: str) -> AdapterWeights:
    """One adapter of a PeftModel as the engine's AdapterWeights (same tensors, no files)."""
    from peft.tuners.lora import LoraLayer
    from peft.utils import ModulesToSaveWrapper

    weights = AdapterWeights(Path(name), {})
    for module_name, module in peft.base_model.model.named_modules():
        if isinstance(module, LoraLayer) and name in module.lora_A:
            weights.lora[module_name] = LoraPair(module.lora_A[name].weight.detach(),
                                                 module.lora_B[name].weight.detach(),
                                                 module.scaling[name])
        if isinstance(module, ModulesToSaveWrapper) and name in module.modules_to_save:
            state = module.modules_to_save[name].state_dict()
            weights.saved[module_name] = {k: v.detach() for k, v in state.items()}
    return weights


# ---------------------------------------------------------------------------- timing
def interleaved(variants: dict[str, Callable[[], None]], rounds: int,
                sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median seconds per call of each variant, timed round-robin, all in inference mode."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for fn in variants.values():                     # warm-up
            fn()
        for _ in range(rounds):
            for name, fn in variants.items():
                sync()
                start = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def assignments(count: int, rows: int) -> list[int]:
    """Row i uses adapter i mod count (every adapter gets rows)."""
    return [i % count for i in range(rows)]


def report(title: str, seconds: dict[str, float], rows: int, limit: float) -> None:
    base = seconds["base"]
    print(f"\n{title}")
    print(f"{'variant':<28} {'rows/s':>10} {'x base':>8}   arithmetic limit {limit:.3f}")
    for name, value in seconds.items():
        print(f"{name:<28} {rows / value:>10.1f} {base / value:>8.3f}")


# ---------------------------------------------------------------------------- (a) MiniLM
def linear_flops(model: torch.nn.Module, targets: list[str], r: int) -> tuple[float, float]:
    """(base, LoRA) multiply-add FLOPs per token of the encoder layers' linear layers."""
    base = lora = 0.0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layer." in name:
            base += 2 * module.in_features * module.out_features
            if any(name.endswith(t) for t in targets):
                lora += 2 * r * (module.in_features + module.out_features)
    return base, lora


def encoder_limit(model, tokens: int, padded: int, rows: int, targets, r: int) -> float:
    config = model.config
    base, lora = linear_flops(model, targets, r)
    attention = 2 * 2 * padded * config.hidden_size * config.num_hidden_layers
    per_token = base + attention
    limit = per_token / (per_token + lora)
    print(f"arithmetic limit: per padded token, encoder linear layers {base / 1e6:.2f} MFLOP + "
          f"attention scores/values 2*2*L*H*layers = {attention / 1e6:.2f} MFLOP (L={padded} "
          f"padded, H={config.hidden_size}, {config.num_hidden_layers} layers); LoRA r{r} "
          f"2*r*(in+out) over the targets = {lora / 1e6:.3f} MFLOP; limit = base / (base + "
          f"LoRA) = {limit:.4f} (heads: per row, < 0.1%; {rows} rows, {tokens} real tokens)")
    return limit


def engine_benchmark(args: argparse.Namespace) -> None:
    import transformers

    from loralab.models.sources import resolve_model_source

    torch.set_grad_enabled(False)
    transformers.utils.logging.set_verbosity_error()
    source = resolve_model_source(MINILM)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    pairs = mrpc_pairs(args.rows)
    batch = tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation=True,
                      max_length=128, padding=True, return_tensors="pt")
    plain = transformers.AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=2, dtype=torch.float32).eval()
    peft = peft_with_adapters(copy.deepcopy(plain), max(COUNTS), MINILM_TARGETS,
                              MINILM_HEADS, "SEQ_CLS")
    engine = MixedEngine(copy.deepcopy(plain), torch.device("cpu"))
    slots = [engine.attach(weights_of(peft, f"a{i}")) for i in range(max(COUNTS))]
    tokens = int(batch["attention_mask"].sum())
    limit = encoder_limit(plain, tokens, batch["input_ids"].shape[1], args.rows,
                          MINILM_TARGETS, 16)

    def ours_call(count):
        rows = [slots[k] for k in assignments(count, args.rows)]

        def run():
            with engine.rows(rows):
                engine.model(**batch)
        return run

    def peft_call(count):
        names = [f"a{k}" for k in assignments(count, args.rows)]
        return lambda: peft(**batch, adapter_names=names)

    variants: dict[str, Callable[[], None]] = {"base": lambda: plain(**batch)}
    for count in COUNTS:
        variants[f"loralab, {count} adapters"] = ours_call(count)
    # PEFT's ordinary forward with one active adapter (no mixing): what one unmerged LoRA
    # costs in plain PEFT, the floor for any per-row path
    peft.set_adapter("a0")
    variants["PEFT one adapter (active)"] = lambda: peft(**batch)
    for count in COUNTS:
        variants[f"PEFT adapter_names, {count}"] = peft_call(count)
    check_equal(engine, peft, slots, batch, args.rows)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.rows} "
          f"MRPC dev pairs, padded to {batch['input_ids'].shape[1]} tokens; "
          f"{args.rounds} interleaved rounds (median)")
    seconds = interleaved(variants, args.rounds)
    report("(a) MiniLM-L6 on CPU, LoRA r16 on 5 targets + per-adapter pooler/classifier",
           seconds, args.rows, limit)


def check_equal(engine, peft, slots, batch, rows) -> None:
    """Both paths compute the same logits (the benchmark compares equal work)."""
    names = [f"a{k}" for k in assignments(64, rows)]
    with engine.rows([slots[k] for k in assignments(64, rows)]):
        ours = engine.model(**batch).logits
    theirs = peft(**batch, adapter_names=names).logits
    print(f"max |loralab - PEFT| logits over the 64-adapter batch: "
          f"{(ours - theirs).abs().max().item():.2e}")


# ---------------------------------------------------------------------------- GPU variant
def llama_1b(device: torch.device, dtype: torch.dtype):
    import transformers

    config = transformers.LlamaConfig(vocab_size=32000, hidden_size=2048,
                                      intermediate_size=5632, num_hidden_layers=22,
                                      num_attention_heads=32, num_key_value_heads=4,
                                      max_position_embeddings=2048)
    with device:
        model = transformers.LlamaForCausalLM(config)
    return model.to(dtype).eval()


def gpu_benchmark(args: argparse.Namespace) -> None:
    if not torch.cuda.is_available():
        print("gpu: skipped: no CUDA device here (this variant runs unchanged on a CUDA "
              "machine: python benchmarks/serving.py gpu)")
        return
    torch.set_grad_enabled(False)
    device, rows, length = torch.device("cuda"), 64, 256
    plain = llama_1b(device, torch.bfloat16)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    peft = peft_with_adapters(copy.deepcopy(plain), max(COUNTS), targets, None, "CAUSAL_LM")
    engine = MixedEngine(copy.deepcopy(plain), device)
    slots = [engine.attach(weights_of(peft, f"a{i}")) for i in range(max(COUNTS))]
    ids = torch.randint(0, 32000, (rows, length), device=device)
    base, lora = linear_flops_llama(plain, targets, 16)
    attention = 2 * 2 * length * 2048 * 22 / 2           # causal: half the score matrix
    limit = (base + attention) / (base + attention + lora)
    print(f"{torch.cuda.get_device_name()}; Llama-shaped 1.1B (random weights), bf16; "
          f"batch {rows} x {length}; arithmetic limit {limit:.4f} (linear {base / 1e9:.3f} "
          f"GFLOP/token, LoRA {lora / 1e6:.2f} MFLOP/token, prefill attention included)")
    for phase in ("prefill", "decode"):
        variants = gpu_variants(phase, plain, peft, engine, slots, ids)
        seconds = interleaved(variants, args.rounds, torch.cuda.synchronize)
        report(f"GPU {phase} step", seconds, rows, limit)


def gpu_variants(phase, plain, peft, engine, slots, ids) -> dict[str, Callable[[], None]]:
    """One prefill (no cache) or one decode step (a KV cache of 256, cropped back after each
    step) for the base model, loralab and PEFT's adapter_names."""
    import transformers

    from loralab.serving.multi_lora import BatchPlan

    rows, length = ids.shape
    device = ids.device
    cache = transformers.DynamicCache(config=plain.config)
    with torch.inference_mode():
        plain(input_ids=ids, use_cache=True, cache=cache, logits_to_keep=1)
    step = {"input_ids": ids[:, :1],
            "position_ids": torch.full((rows, 1), length, device=device)}

    def call(model, **kw):
        if phase == "prefill":
            return lambda: model(input_ids=ids, use_cache=False, logits_to_keep=1, **kw)

        def decode():
            model(**step, cache=cache, use_cache=True, logits_to_keep=1, **kw)
            cache.crop(length)
        return decode

    variants: dict[str, Callable[[], None]] = {"base": call(plain)}
    for count in COUNTS:
        plan = BatchPlan.of([slots[k] for k in assignments(count, rows)], device)
        variants[f"loralab, {count} adapters"] = gpu_ours(engine, plan, call(engine.model))
    for count in COUNTS:
        names = [f"a{k}" for k in assignments(count, rows)]
        variants[f"PEFT adapter_names, {count}"] = call(peft, adapter_names=names)
    return variants


def gpu_ours(engine, plan, inner):
    """The decode loop keeps one plan across its steps (rows' A/B gathered once), as here."""
    def run():
        with engine.context.use(plan):
            inner()
    return run


def linear_flops_llama(model, targets, r) -> tuple[float, float]:
    base = lora = 0.0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in name:
            base += 2 * module.in_features * module.out_features
            if name.rsplit(".", 1)[-1] in targets:
                lora += 2 * r * (module.in_features + module.out_features)
    return base, lora


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["engine", "http", "generate", "gpu", "all"])
    parser.add_argument("--rows", type=int, default=64, help="(a) batch rows")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds")
    parser.add_argument("--requests", type=int, default=10000, help="(b) classify requests")
    parser.add_argument("--clients", type=int, default=32, help="(b) concurrent clients")
    parser.add_argument("--gen-per-client", type=int, default=8,
                        help="(c) completions per client")
    parser.add_argument("--gen-clients", default="16,64",
                        help="(c) concurrent clients, comma-separated counts")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--port", type=int, default=8741, help="(b) loralab serve's port "
                        "(the naive server: the next one)")
    parser.add_argument("--workdir", default="bench_out/serving")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)   # the servers of (b) and (c) too
    if args.part in ("engine", "all"):
        engine_benchmark(args)
    if args.part in ("http", "generate", "all"):
        sys.path.insert(0, str(Path(__file__).parent))
        import serving_generation
        import serving_load

        if args.part in ("http", "all"):
            serving_load.http_benchmark(args)
        if args.part in ("generate", "all"):
            serving_generation.generation_benchmark(args)
    if args.part in ("gpu", "all"):
        gpu_benchmark(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
