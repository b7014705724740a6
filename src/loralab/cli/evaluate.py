"""`loralab eval` and `loralab predict`."""

from __future__ import annotations

import argparse

from loralab.cli.common import add_no_progress, add_set, add_set_from, positive_int


def cmd_eval(args: argparse.Namespace) -> int:
    from loralab.commands.evaluate import run_eval

    return run_eval(args.adapter, args.config, args.set, args.output, args.split,
                    progress=not args.no_progress, baseline=args.baseline,
                    base_model=args.model, adapter_name=args.adapter_name,
                    all_adapters=args.all_adapters, set_from=args.set_from)


def cmd_predict(args: argparse.Namespace) -> int:
    from loralab.commands.predict import run_predict

    return run_predict(args.adapter, args.text, args.text_pair, args.file, args.batch_size,
                       adapter_name=args.adapter_name, constrain=args.constrain,
                       schema=args.schema)


def add_commands(sub: argparse._SubParsersAction) -> None:
    add_eval(sub)
    add_predict(sub)


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate an adapter folder (or a base LM) on a data split")
    p.add_argument("adapter", nargs="?", help="adapter folder (lora_* inside a run folder), "
                                              "or a multi-adapter folder / run")
    p.add_argument("--adapter", dest="adapter_name", metavar="NAME",
                   help="the adapter of a multi-adapter folder to evaluate")
    p.add_argument("--all-adapters", action="store_true",
                   help="evaluate every adapter of a multi-adapter folder (the base model "
                        "loaded once), each on its own data; with --output also one flat "
                        "DIR/metrics.json")
    p.add_argument("--model", help="evaluate this causal LM as it is, without an adapter "
                                   "(needs --config for the data and metrics)")
    p.add_argument("--baseline", action="store_true",
                   help="causal LMs: also evaluate the base model (adapter off) on the same "
                        "examples; writes baseline_results.json, lora_results.json, "
                        "comparison.md")
    p.add_argument("--config", help="config whose data section to use (default: the "
                                    "adapter's own training config)")
    add_set(p)
    add_set_from(p)
    p.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    p.add_argument("--output", "-o", help="folder for the result files")
    add_no_progress(p)
    p.set_defaults(func=cmd_eval)


def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict with an adapter; one JSON line per input")
    p.add_argument("adapter", help="adapter folder, a merged / ONNX export folder, or a "
                                   "multi-adapter folder / run with --adapter")
    p.add_argument("--adapter", dest="adapter_name", metavar="NAME",
                   help="the adapter of a multi-adapter folder to predict with")
    p.add_argument("--text", action="append", default=[], help="input text (repeatable)")
    p.add_argument("--text-pair", action="append", default=[],
                   help="second text for pair tasks, one per --text")
    p.add_argument("--file", help="JSONL/CSV/TSV with a text column (and text_pair), "
                                  "or a .txt file with one text per line")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--constrain", choices=["json", "json_schema", "none"],
                   help="causal adapters: every answer a JSON object (json) or one that "
                        "follows the JSON Schema of --schema / data.schema_file (json_schema); "
                        "default: the adapter's eval.constrain")
    p.add_argument("--schema", metavar="FILE",
                   help="a JSON Schema file answers must follow (implies --constrain "
                        "json_schema)")
    p.set_defaults(func=cmd_predict)
