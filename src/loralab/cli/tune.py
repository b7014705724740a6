"""`loralab tune`: an Optuna study over a search space of config keys."""

from __future__ import annotations

import argparse

from loralab.cli.common import at_least


def whole_number(text: str) -> int:
    """argparse type: any whole number (the range is the command's to refuse, in one line)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def cmd_tune(args: argparse.Namespace) -> int:
    from loralab.experiments.tune.command import run_tune

    return run_tune(args.config, args.space, trials=args.trials, output=args.output,
                    jobs=args.jobs, timeout=args.timeout, metric=args.metric, seed=args.seed,
                    pruner=args.pruner, overwrite=args.overwrite, backend=args.backend,
                    address=args.address)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="search hyper-parameters: an Optuna study of loralab runs")
    p.add_argument("config", help="the base config (YAML)")
    p.add_argument("--space", required=True,
                   help="search space YAML: params: {config.key: {type: float|int|choice, "
                        "...}}")
    p.add_argument("--trials", type=whole_number, required=True,
                   help="trials the study holds when done (a re-run continues up to N)")
    p.add_argument("--output", "-o", required=True, help="study folder")
    p.add_argument("--jobs", "-j", type=whole_number, default=1,
                   help="trials at once in this process (default 1)")
    p.add_argument("--timeout", type=at_least(float, 0), metavar="S",
                   help="start no new trial after S seconds")
    p.add_argument("--metric", help="metric to optimise (default: training.metric_for_best "
                                    "or the task's); its direction is the metric registry's")
    p.add_argument("--seed", type=whole_number, default=0, help="TPE sampler seed (default 0)")
    p.add_argument("--pruner", choices=["median", "halving", "none"],
                   help="prune on each epoch's validation metric (default: the space file's "
                        "pruner:, else median)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local processes, or Ray Tune (OptunaSearch + ASHA)")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a study of another config in --output")
    p.set_defaults(func=cmd_tune)
