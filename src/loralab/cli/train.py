"""`loralab train` and `loralab demo`."""

from __future__ import annotations

import argparse

from loralab.cli.common import add_config, add_no_progress, add_set, add_set_from


def cmd_train(args: argparse.Namespace) -> int:
    from loralab.commands.train import run_train

    return run_train(args.config, args.set, args.output, overwrite=args.overwrite,
                     resume=args.resume, progress=not args.no_progress,
                     set_from=args.set_from, data=args.data, dry_run=args.dry_run)


def cmd_demo(args: argparse.Namespace) -> int:
    from loralab.commands.demo import run_demo

    return run_demo(args.output, args.set, progress=not args.no_progress)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a LoRA adapter (or several: adapters:) from a "
                                     "YAML config")
    add_config(p)
    add_set_from(p)
    p.add_argument("--data", metavar="DIR", help="read the data (every adapter's) from the "
                                                 "files `loralab data export` wrote to DIR")
    p.add_argument("--output", "-o", help="run folder (default: runs/<name>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run folder")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the checkpoint in --output")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config, model limits, data and output folder as train "
                        "would; load no weights, write nothing")
    add_no_progress(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="train and evaluate the built-in default, offline")
    add_set(p)
    p.add_argument("--output", "-o", default="runs/demo", help="run folder")
    add_no_progress(p)
    p.set_defaults(func=cmd_demo)
