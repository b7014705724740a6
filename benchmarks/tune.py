"""Does pruning pay? The same `loralab tune` study with and without pruning (issue 17 item 4).

Runs two studies of the same search space, the same seed and the same number of trials on one
dataset: one with the median pruner, one without (`--pruner none`); prints, for each, the
training steps all its trials spent, the best score, and the ratio of the two. The target:
the pruned study spends at most 0.5x the steps and finds a best score within 0.5 points.

Full run (offline, from the repository root; MRPC on the offline MiniLM encoder, 16 trials
of 3 epochs each way: several hours on 2 CPU cores):

    HF_HUB_OFFLINE=1 python benchmarks/tune.py --output runs/tune-bench

Proof that it runs (a minute or two):

    HF_HUB_OFFLINE=1 python benchmarks/tune.py --trials 2 --train-samples 64 \
        --eval-samples 32 --epochs 2 --output /tmp/tune-bench

The subsample recorded in docs/benchmarks.md ("Tune: pruning"; about 12 minutes here):

    nice -n 10 python benchmarks/tune.py --trials 16 --jobs 2 --train-samples 64 \
        --eval-samples 64 --batch-size 16 --epochs 3 --threads 1 --set model.max_length=64 \
        --output /tmp/tune-bench

A trial's steps include those of a first epoch that training.on_collapse restarted.
The results are also written to OUTPUT/benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPACE = {"params": {
    "training.learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-2, "log": True},
    "training.warmup": {"type": "float", "low": 0.0, "high": 0.2},
    "lora.r": {"type": "choice", "values": [4, 8, 16]},
    "lora.dropout": {"type": "choice", "values": [0.0, 0.1]},
}}


def base_config(args: argparse.Namespace, out: Path) -> Path:
    """The benchmark's base config: the example with the size settings put in."""
    from loralab.config import dump_config, load_config

    overrides = [f"training.epochs={args.epochs}", f"training.seed={args.seed}"]
    if args.train_samples:
        overrides.append(f"data.max_train_samples={args.train_samples}")
    if args.eval_samples:
        overrides.append(f"data.max_eval_samples={args.eval_samples}")
    if args.threads:
        overrides.append(f"training.threads={args.threads}")
    if args.batch_size:
        overrides.append(f"training.batch_size={args.batch_size}")
    overrides.extend(args.set)
    config = load_config(args.config, overrides)
    path = out / "base.yaml"
    path.write_text(dump_config(config), encoding="utf-8")
    return path


def spent_steps(row: dict, out: Path) -> int:
    """A trial's optimizer steps, those of an attempt restarted after a collapsed first epoch
    (training.on_collapse=restart; metrics.json `restarts`) included."""
    from loralab.experiments.status import read_metrics
    from loralab.experiments.tune.layout import TRIALS_DIR

    metrics = (read_metrics(out / TRIALS_DIR / row["folder"]) if row["folder"] else None) or {}
    return (row["steps"] or 0) + sum(r["steps"] for r in metrics.get("restarts") or [])


def run_study(config: Path, space: Path, out: Path, args: argparse.Namespace,
              pruner: str) -> dict:
    import optuna

    from loralab.cli import main
    from loralab.experiments.tune.report import trial_rows
    from loralab.experiments.tune.study import storage

    started = time.perf_counter()
    code = main(["tune", str(config), "--space", str(space), "--trials", str(args.trials),
                 "--output", str(out), "--seed", str(args.seed), "--pruner", pruner,
                 "--jobs", str(args.jobs)])
    if code not in (0, 1):
        raise SystemExit(f"loralab tune exited with {code}")
    study = optuna.load_study(study_name="loralab", storage=storage(out))
    rows = trial_rows(study, out)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    return {"pruner": pruner, "trials": len(rows),
            "pruned": sum(r["state"].startswith("pruned") for r in rows),
            "steps": sum(spent_steps(r, out) for r in rows),
            "restarts": sum(spent_steps(r, out) > (r["steps"] or 0) for r in rows),
            "best": study.best_value if complete else None,
            "best_params": study.best_params if complete else None,
            "metric": json.loads((out / "tune.json").read_text())["metric"],
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "examples" / "mrpc_minilm.yaml"))
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-samples", type=int, help="subsample the training split")
    parser.add_argument("--eval-samples", type=int, help="subsample the validation split")
    parser.add_argument("--threads", type=int, help="torch threads per trial")
    parser.add_argument("--batch-size", type=int, help="training.batch_size of every trial")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="another override of the base config (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="trials at once (loralab tune --jobs)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    config = base_config(args, out)
    space = out / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE, sort_keys=False), encoding="utf-8")
    results = [run_study(config, space, out / name, args, pruner)
               for name, pruner in (("pruned", "median"), ("full", "none"))]
    pruned, full = results
    ratio = pruned["steps"] / full["steps"] if full["steps"] else float("nan")
    gap = (None if pruned["best"] is None or full["best"] is None
           else round(100 * (full["best"] - pruned["best"]), 2))
    print(f"\n{'study':<8} {'trials':>6} {'pruned':>6} {'steps':>7} {'best ' + full['metric']:>16}"
          f" {'seconds':>8}")
    for row in results:
        best = f"{row['best']:.4f}" if row["best"] is not None else "-"
        print(f"{row['pruner']:<8} {row['trials']:>6} {row['pruned']:>6} {row['steps']:>7} "
              f"{best:>16} {row['seconds']:>8}")
    print(f"steps ratio (pruned / full): {ratio:.2f} (target <= 0.5); best score gap: "
          f"{gap if gap is not None else '-'} points (target <= 0.5)")
    (out / "benchmark.json").write_text(json.dumps(
        {"studies": results, "steps_ratio": ratio, "best_gap_points": gap,
         "settings": vars(args)}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
