"""transformers' own continuous batching against loralab's decode loop, in one process.

    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/continuous_batching.py [--prompts 32]

The base SmolLM2-135M-Instruct (no adapters: transformers' `generate_batch` has no per-row
adapter) generates --tokens greedy tokens (32) for --prompts prompts (32, 16 distinct chat
prompts cycled) with at most --batch (16) sequences at a time:

- transformers: `model.generate_batch` (ContinuousBatchingManager: paged KV cache, packed
  variable-length batches, "paged|sdpa" attention), its default configuration on CPU;
- loralab: `CausalEngine.generate`, the loop `loralab serve` runs (serving/decode_batch.py:
  left-padded rows joined before each step, DynamicCache, retired rows leave at once).

Printed: wall seconds and generated tokens/s of each (interleaved rounds, median), their ratio,
and whether the greedy tokens agree. This is the measurement behind docs/serving.md's choice.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
QUESTIONS = ["Write a haiku about the sea.", "List three prime numbers.",
             "What is the capital of France?", "Explain LoRA in one sentence.",
             "Name a color.", "Say hello in Spanish.", "What is 2 + 2?", "Give me a fruit.",
             "Describe a cat.", "What day comes after Monday?", "Tell me a joke.",
             "Translate 'thank you' to French.", "What is water made of?",
             "Who wrote Hamlet?", "Name a planet.", "How many legs does a spider have?"]


def load():
    from loralab.config import validate_config
    from loralab.models.placement import Placement
    from loralab.tasks import get_task

    config = validate_config({"model": {"name": MODEL, "task": "causal_lm"}})
    task = get_task("causal_lm", config)
    return config, task, task.load_serving_base(config, None, Placement(torch.device("cpu")))


def transformers_run(model, prompts: list[list[int]], tokens: int, batch: int, eos: int):
    import transformers

    config = transformers.GenerationConfig(max_new_tokens=tokens, do_sample=False,
                                           eos_token_id=eos, pad_token_id=eos)
    cb = transformers.ContinuousBatchingConfig(max_requests_per_batch=batch)
    out = model.generate_batch(prompts, generation_config=config,
                               continuous_batching_config=cb, progress_bar=False)
    order = sorted(out, key=lambda rid: int(rid.rsplit("_", 1)[-1]))     # "req_<i>"
    return [list(out[rid].generated_tokens) for rid in order]


def loralab_run(engine, prompts: list[list[int]], tokens: int, batch: int):
    from loralab.serving.sampling import GenerationRow, Sampling

    engine.max_batch_size = batch
    rows = [GenerationRow(p, 0, Sampling(tokens, temperature=0), engine.tokenizer,
                          engine.eos_ids) for p in prompts]
    engine.generate(rows)
    return [r.token_ids + ([r.finish_reason] if r.finish_reason == "stop" else [])
            for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from loralab.serving.causal_engine import CausalEngine

    config, task, base = load()
    engine = CausalEngine(MODEL, base, task, torch.device("cpu"), args.batch)
    tok = base.tokenizer
    prompts = [tok.apply_chat_template([{"role": "user", "content": QUESTIONS[i % 16]}],
                                       tokenize=False, add_generation_prompt=True)
               for i in range(args.prompts)]
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    eos = tok.eos_token_id
    seconds: dict[str, list[float]] = {"transformers": [], "loralab": []}
    outputs: dict[str, list] = {}
    runs = {"transformers": lambda: transformers_run(base.model, ids, args.tokens, args.batch,
                                                      eos),
            "loralab": lambda: loralab_run(engine, ids, args.tokens, args.batch)}
    with torch.inference_mode():
        for _ in range(args.rounds):
            for name, run in runs.items():
                started = time.perf_counter()
                outputs[name] = run()
                seconds[name].append(time.perf_counter() - started)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.prompts} "
          f"prompts x {args.tokens} greedy tokens, <= {args.batch} sequences at a time, "
          f"median of {args.rounds}")
    generated = {}
    for name in runs:
        made = sum(len([t for t in o if t != "stop" and t != eos]) for o in outputs[name])
        generated[name] = made / statistics.median(seconds[name])
        print(f"{name:<13} {statistics.median(seconds[name]):8.2f} s  "
              f"{generated[name]:8.1f} tokens/s  ({made} tokens)")
    print(f"ratio loralab / transformers: {generated['loralab'] / generated['transformers']:.2f}x")
    same = sum(strip(a, eos) == strip(b, eos)
               for a, b in zip(outputs["loralab"], outputs["transformers"]))
    print(f"greedy outputs identical: {same} of {args.prompts}")
    return 0


def strip(tokens: list, eos: int) -> list[int]:
    return [t for t in tokens if t != "stop" and t != eos]


if __name__ == "__main__":
    raise SystemExit(main())
