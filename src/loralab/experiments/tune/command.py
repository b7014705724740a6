"""`loralab tune CONFIG --space SPACE.yaml --trials N --output DIR`: an Optuna study whose
trials are ordinary loralab run folders.

Everything that can be refused is refused before DIR is touched: the numbers, the space
(through the config schema), the metric (the task must produce it), a folder that holds a
study of another config. Then `--jobs` threads each ask the study for a trial, write its run
folder and train it in a child process, until the study holds N trials (finished, pruned or
failed; a killed trial is run again and does not count) or --timeout seconds have passed.
The end: best.yaml, study.md, plots and report.html (loralab.experiments.tune.report).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from loralab.atomic import check_writable_dir
from loralab.config import Config, dump_config, load_config
from loralab.errors import UserError
from loralab.experiments.tune.layout import (
    check_folder,
    clear_study,
    write_settings,
)
from loralab.experiments.tune.space import PRUNERS, Space, load_space
from loralab.experiments.tune.study import open_study, recover_killed, require_optuna
from loralab.experiments.tune.trials import ask, run
from loralab.metrics.metric_registry import greater_is_better, resolve_metric
from loralab.training.tracking.group import tracking_group


def study_metric(config: Config, requested: str | None) -> str:
    """The metric the study optimises, as the task's evaluations name it."""
    from loralab.data.loader import load_data
    from loralab.tasks import get_task

    task = get_task(config.model.task, config)
    data = load_data(config.data, task.records)
    names = task.metric_names(config, task.label_names(data.every_record, config))
    wanted = requested or config.training.metric_for_best or task.default_metric
    return resolve_metric(wanted, names,
                          key="--metric" if requested else "training.metric_for_best")


def check_numbers(trials: int, jobs: int, timeout: float | None) -> None:
    if trials < 1:
        raise UserError(f"--trials must be at least 1 (got {trials})")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1 (got {jobs})")
    if timeout is not None and not timeout > 0:
        raise UserError(f"--timeout must be a positive number of seconds (got {timeout})")


def prepare(config_file: str, space_file: str, metric: str | None, pruner: str | None,
            backend: str) -> tuple[Config, dict[str, Any], Space, str, str]:
    base = load_config(config_file)
    base_raw = base.model_dump(mode="json")
    space = load_space(space_file, base_raw)
    chosen = study_metric(base, metric)
    base_raw["training"]["metric_for_best"] = chosen
    pruner = pruner or space.pruner or "median"
    if pruner not in PRUNERS:
        raise UserError(f"--pruner {pruner!r}: expected one of {', '.join(PRUNERS)}")
    if backend == "ray":
        pruner = "asha"  # Ray Tune's scheduler decides
    return base, base_raw, space, chosen, pruner


def run_tune(config_file: str, space_file: str, *, trials: int, output: str, jobs: int = 1,
             timeout: float | None = None, metric: str | None = None, seed: int = 0,
             pruner: str | None = None, overwrite: bool = False, backend: str = "local",
             address: str | None = None) -> int:
    check_numbers(trials, jobs, timeout)
    require_optuna()
    out = Path(output)
    check_writable_dir(out)
    base, base_raw, space, chosen, pruner = prepare(config_file, space_file, metric, pruner,
                                                    backend)
    direction = "maximize" if greater_is_better(chosen) else "minimize"
    settings = {"config": dump_config(base), "space": space.as_json(), "metric": chosen,
                "direction": direction, "pruner": pruner, "seed": seed, "trials": trials,
                "base": base_raw, "backend": backend}
    if check_folder(out, settings, overwrite):
        clear_study(out)
    write_settings(out, settings)
    params = {"metric": chosen, "direction": direction, "trials": trials, "pruner": pruner}
    with tracking_group(base, out.resolve().name, params) as group:  # training.report_to
        code = run_study(out, settings, space, base_raw, jobs, timeout, address, config_file)
        group.summary.update(study_summary(out))
    return code


def study_summary(out: Path) -> dict[str, float]:
    """The numbers the study's parent run (MLflow) ends with."""
    from loralab.experiments.tune.study import storage

    optuna = require_optuna()
    study = optuna.load_study(study_name="loralab", storage=storage(out))
    summary = {"trials": float(len(study.trials))}
    done = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    if done:
        summary["best_value"] = float(study.best_value)
        summary["best_trial"] = float(study.best_trial.number)
    return summary


def run_study(out: Path, settings: dict[str, Any], space: Space, base_raw: dict[str, Any],
              jobs: int, timeout: float | None, address: str | None, config_file: str) -> int:
    trials, seed, chosen = settings["trials"], settings["seed"], settings["metric"]
    direction, pruner = settings["direction"], settings["pruner"]
    if settings["backend"] == "ray":
        from loralab.experiments.tune.ray_backend import run_ray_study

        return run_ray_study(out, settings, space, address, jobs)
    study = open_study(out, direction, pruner, seed, trials)
    again = recover_killed(study, out)
    print(f"tune {Path(config_file).name}: {len(space.params)} parameters, {trials} trials, "
          f"{direction} {chosen}, pruner {pruner} -> {out}"
          + (f" (trials {', '.join(map(str, again))} killed earlier: run again)" if again
             else ""), flush=True)
    deadline = time.monotonic() + timeout if timeout else None
    lock = threading.Lock()

    def worker() -> None:
        while deadline is None or time.monotonic() < deadline:
            asked = ask(study, space, base_raw, out, seed, trials, lock)
            if asked is None:
                return
            if asked.run_dir is None:
                print(f"trial {asked.number}: failed (no valid config for {asked.params})",
                      flush=True)
                continue
            run(asked, out)
            print(trial_line(study, asked.number), flush=True)

    try:
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(jobs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
    except KeyboardInterrupt:
        print("loralab: interrupted; the next `loralab tune` resumes the study",
              file=sys.stderr)
        return 130
    from loralab.experiments.tune.report import write_study_outputs

    return write_study_outputs(out, study, settings)


def trial_line(study: Any, number: int) -> str:
    trial = study.get_trials(deepcopy=False)[number]
    state = trial.state.name.lower()
    value = trial.value if trial.value is not None else trial.user_attrs.get("pruned_value")
    shown = f" {value:.4f}" if isinstance(value, float) else ""
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in trial.params.items())
    return f"trial {number}: {state}{shown}  ({params})"
