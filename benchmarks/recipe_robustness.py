"""The table of examples/recipe_robustness.yaml: which training recipe never collapses.

Run (offline, from the repository root; the grid takes about 1 h on 2 CPU cores):

    HF_HUB_OFFLINE=1 loralab grid examples/recipe_robustness.yaml --output runs/recipe_robustness \
        --jobs 2
    python benchmarks/recipe_robustness.py runs/recipe_robustness

Reads every finished run of the grid's current plan (run.json: dataset, seed, the recipe's
parameters; metrics.json: the best checkpoint's validation metrics and the trivial baseline)
and prints, per dataset and recipe, each seed's score and the mean. A run has *collapsed*
when it learned nothing beyond the label prior: MCC below 0.1 for classification (the
majority class has MCC 0; its F1 on MRPC is already 0.81, which is why F1 cannot tell),
Pearson below 0.1 for regression, or accuracy within 0.01 of the majority-class accuracy for
many-class intents.
The recipe to ship is the one with no collapse and the best mean over datasets.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def score_of(metrics: dict) -> tuple[str, float, bool]:
    """(metric name, value, collapsed) of one run's best validation metrics."""
    best, trivial = metrics["best"], metrics.get("trivial_baseline") or {}
    if metrics["task"] == "regression":
        value = best["pearson"]
        return "pearson", value, value < 0.1
    if "f1_binary" not in best:                 # many classes: accuracy against the prior
        value = best["accuracy"]
        return "accuracy", value, value <= trivial.get("accuracy", 0.0) + 0.01
    value = best["mcc"]
    return "mcc", value, value < 0.1


def recipe_of(run: dict) -> str:
    params = run["params"]
    head = params.get("training.head_learning_rate")
    return (f"lr {params['training.learning_rate']:g}, warm-up {params['training.warmup']:g}"
            + (f", head lr {head:g}" if head else ""))


def collect(grid: Path) -> dict[tuple[str, str], dict[int, tuple[str, float, bool]]]:
    """The finished runs of the grid's current plan (plan.json), not of earlier versions."""
    table: dict[tuple[str, str], dict[int, tuple[str, float, bool]]] = defaultdict(dict)
    plan = json.loads((grid / "plan.json").read_text())
    for folder in sorted(grid / "runs" / run["folder"] for run in plan["runs"]):
        run_file, metrics_file = folder / "run.json", folder / "metrics.json"
        if not (run_file.is_file() and metrics_file.is_file()):
            continue
        run = json.loads(run_file.read_text())
        if run.get("status") != "finished":
            continue
        table[(run["dataset"], recipe_of(run))][run["seed"]] = score_of(
            json.loads(metrics_file.read_text()))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("grid", type=Path, help="the grid folder of examples/recipe_robustness")
    args = parser.parse_args()
    table = collect(args.grid)
    recipes = sorted({recipe for _, recipe in table})
    datasets = sorted({dataset for dataset, _ in table})
    print(f"{'dataset':<10} {'recipe':<38} {'metric':<9} {'seeds':<26} {'mean':>6}  collapsed")
    means: dict[str, list[float]] = defaultdict(list)
    collapses: dict[str, int] = defaultdict(int)
    for dataset in datasets:
        for recipe in recipes:
            seeds = table.get((dataset, recipe), {})
            if not seeds:
                continue
            name = next(iter(seeds.values()))[0]
            values = [seeds[s][1] for s in sorted(seeds)]
            down = sum(seeds[s][2] for s in seeds)
            mean = statistics.mean(values)
            means[recipe].append(mean)
            collapses[recipe] += down
            shown = " ".join(f"{v:.3f}" for v in values)
            print(f"{dataset:<10} {recipe:<38} {name:<9} {shown:<26} {mean:6.3f}  "
                  f"{down} of {len(values)}")
    print()
    print(f"{'recipe':<38} {'datasets':>8} {'mean of means':>14} {'collapsed runs':>15}")
    for recipe in recipes:
        print(f"{recipe:<38} {len(means[recipe]):>8} {statistics.mean(means[recipe]):>14.3f} "
              f"{collapses[recipe]:>15}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
