"""`loralab gate` and `loralab publish` (the release step of a pipeline)."""

from __future__ import annotations

import argparse


def cmd_gate(args: argparse.Namespace) -> int:
    from loralab.evaluation.gate.command import run_gate

    return run_gate(args.results, args.baseline, args.rule, args.rules,
                    promote_on_pass=args.promote, output=args.output)


def cmd_publish(args: argparse.Namespace) -> int:
    from loralab.export.publish import run_publish

    return run_publish(args.adapter_dir, args.to, name=args.name, gate=args.gate)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate", help="check metric rules against a stored baseline; exit 1 "
                                    "when a rule fails")
    p.add_argument("results", help="results file or folder: a run's metrics.json, an eval's "
                                   "lora_results.json, a grid's best.json, a metrics JSON")
    p.add_argument("--baseline", required=True,
                   help="the stored baseline (a results file; need not exist yet)")
    p.add_argument("--rule", action="append", default=[], metavar="RULE",
                   help="e.g. 'code.pass@1 >= baseline - 0.02', 'validation.f1 >= 0.8', "
                        "'code.pass@1 >= base + 0.05' (repeatable)")
    p.add_argument("--rules", action="append", default=[], metavar="RULES.yaml",
                   help="YAML file of rules (see docs/gate.md; repeatable)")
    p.add_argument("--promote", action="store_true",
                   help="on a pass, make these results the baseline (the old one goes to "
                        "<baseline>.history.jsonl)")
    p.add_argument("--output", "-o", help="folder for gate.json (default: the results' folder)")
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("publish", help="copy adapters into a serving models folder under a "
                                       "new version, with a manifest")
    p.add_argument("adapter_dir", help="adapter folder, or a run folder holding adapters")
    p.add_argument("--to", required=True,
                   help="models folder (the version goes to DIR/NAME-vN), or hf:OWNER/NAME")
    p.add_argument("--name", help="published name (default: the adapter or run name)")
    p.add_argument("--gate", help="gate.json of a passing `loralab gate`, kept in the manifest")
    p.set_defaults(func=cmd_publish)
