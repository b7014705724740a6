"""`loralab data synth` and `loralab data export`."""

from __future__ import annotations

import argparse

from loralab.cli.common import add_set, add_set_from


def cmd_data_synth(args: argparse.Namespace) -> int:
    from loralab.commands.data import synth_data

    return synth_data(args.kind, args.out, args.n, args.seed, args.eval_fraction)


def cmd_data_slots(args: argparse.Namespace) -> int:
    from loralab.commands.data import slots_data

    columns = {"tokens": args.tokens, "tags": args.tags, "intent": args.intent,
               "text": args.text, "spans": args.spans}
    return slots_data(args.kind, args.train, args.validation, args.out, columns)


def add_slots(data_sub: argparse._SubParsersAction) -> None:
    p = data_sub.add_parser("slots", help="an intent + slot dataset (SNIPS segments, BIO "
                                          "tags or character spans) as JSON extraction")
    p.add_argument("kind", choices=["segments", "bio", "spans"],
                   help="segments: SNIPS-style JSON {Intent: [{data: [{text, entity}]}]}; "
                        "bio: rows with tokens, BIO tags and an intent; spans: rows with "
                        "text, intent and character spans")
    p.add_argument("--train", required=True, help="file or glob pattern of training files")
    p.add_argument("--validation", required=True, help="file or glob pattern: eval.jsonl")
    p.add_argument("--out", required=True, help="folder for train.jsonl, eval.jsonl, "
                                                "schema.json")
    for name, default in (("tokens", "tokens"), ("tags", "tags"), ("intent", "intent"),
                          ("text", "text"), ("spans", "spans")):
        p.add_argument(f"--{name}", default=default,
                       help=f"the {name} column of bio / spans rows (default {default})")
    p.set_defaults(func=cmd_data_slots)


def cmd_data_export(args: argparse.Namespace) -> int:
    from loralab.commands.data import run_data_export

    return run_data_export(args.config, args.set, args.out, set_from=args.set_from,
                           data=args.data, raw=args.raw)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="data utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="write a synthetic dataset")
    synth.add_argument("kind", choices=["json-extraction", "multiple-choice"],
                       help="json-extraction: user messages -> intent + entities as JSON; "
                            "multiple-choice: questions in three subjects (specialists)")
    synth.add_argument("--n", type=int, default=2000, help="rows in all (default 2000)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--eval-fraction", type=float, default=0.1,
                       help="share of rows in eval.jsonl (default 0.1)")
    synth.add_argument("--out", required=True, help="folder for train.jsonl, eval.jsonl, "
                                                    "schema.json")
    synth.set_defaults(func=cmd_data_synth)

    add_slots(data_sub)
    p = data_sub.add_parser("export", help="write the resolved splits of a config (every "
                                           "adapter's) as JSONL")
    p.add_argument("config", help="YAML config file, or FILE:KEY (a section, e.g. "
                                  "params.yaml:train)")
    add_set(p)
    add_set_from(p)
    p.add_argument("--data", metavar="DIR", help="read the data from an earlier export")
    p.add_argument("--raw", action="store_true",
                   help="the sources' own splits, before data.filter, the validation "
                        "hold-out and max_*_samples")
    p.add_argument("--out", required=True, help="folder to write (replaced if it holds an "
                                                "earlier export)")
    p.set_defaults(func=cmd_data_export)
