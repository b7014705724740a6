"""`loralab tune --backend ray`: the same study on Ray Tune, for a cluster.

Ray Tune's OptunaSearch asks the same Optuna study (DIR/study.journal, the seeded TPE sampler)
for each trial's values, and its ASHA scheduler stops trials early on the metric each
evaluation reports (the best value so far, so a rung compares what a trial would keep). A
trial is one Ray Tune function trial that trains an ordinary run folder DIR/trials/NNNN-ID in
its Ray worker. Ray Tune ends a stopped trial by raising SystemExit from `tune.report`; the
callback turns that into a stop, so the trial ends like a pruned local one (best weights
saved, metrics.json, trial_state `pruned`). A trial Ray killed outright keeps its folder
without metrics.json and is recorded as pruned too. DIR must be on a file system every Ray
node sees (a local Ray: always).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from loralab.errors import UserError
from loralab.experiments.index import record_run
from loralab.experiments.records import FAILED, FINISHED, KILLED, RUNNING
from loralab.experiments.status import mark, read_metrics, read_status
from loralab.experiments.tune.layout import TRIALS_DIR
from loralab.experiments.tune.space import Param, Space, apply_params, decode
from loralab.experiments.tune.study import make_sampler, storage
from loralab.training.callbacks import TrainingCallback

OBJECTIVE = "objective"


def import_ray_tune() -> Any:
    try:
        from ray import tune
        from ray.tune.search.optuna import OptunaSearch  # noqa: F401 - checked here
    except ImportError:
        raise UserError("--backend ray needs Ray Tune: pip install 'loralab[ray]'") from None
    return tune


class RayReport(TrainingCallback):
    """Each evaluation to Ray Tune: the best value so far, and the evaluation's number."""

    def __init__(self, greater: bool) -> None:
        self.greater, self.best, self.evaluations = greater, None, 0
        self.stopped = False

    def on_evaluate(self, step: int, epoch: float, metrics: dict[str, Any],
                    value: float) -> bool:
        from ray import tune

        self.evaluations += 1
        if self.best is None or (value > self.best if self.greater else value < self.best):
            self.best = float(value)
        try:
            tune.report({OBJECTIVE: self.best, "evaluation": self.evaluations})
        except SystemExit:  # Ray Tune ends a trial its scheduler stopped this way
            self.stopped = True
        return self.stopped


class DefineByRun:
    """OptunaSearch's define-by-run space (a picklable callable: Ray saves the searcher)."""

    def __init__(self, params: list[Param]) -> None:
        self.params = params

    def __call__(self, trial: Any) -> None:
        for param in self.params:
            param.suggest(trial)


def decoded(params: dict[str, Any], space: list[Param]) -> dict[str, Any]:
    return {p.key: decode(params[p.key], p.values) if p.kind == "choice" else params[p.key]
            for p in space}


def ray_trial(params: dict[str, Any], out: str, base_raw: dict[str, Any],
              space: list[Param], greater: bool, group: dict[str, str]) -> None:
    """One trial in a Ray worker: the run folder, trained in this process. `group`: the
    tracking group's environment (loralab.training.tracking.group)."""
    os.environ.update(group)
    from loralab.config import validate_config
    from loralab.experiments.naming import run_id
    from loralab.experiments.tune.trials import prepare_folder
    from loralab.training.recipe import train
    from loralab.training.run_lock import hold_run_lock

    values = decoded(params, space)
    config = validate_config(apply_params(base_raw, values))
    number = claim_trial(Path(out), params)
    run_dir = Path(out) / TRIALS_DIR / f"{number:04d}-{run_id(config)}"
    prepare_folder(run_dir, config, number, values)
    set_folder(Path(out), number, run_dir.name)
    if config.training.threads:
        import torch

        torch.set_num_threads(config.training.threads)
    with hold_run_lock(run_dir):
        mark(run_dir, RUNNING, pid=os.getpid(), trial=number)
        try:
            report = RayReport(greater)
            train(config, run_dir, progress=False, resume=True, callbacks=[report])
        except BaseException as exc:
            mark(run_dir, FAILED, error=f"{type(exc).__name__}: {exc}", trial_state=FAILED)
            record_run(Path(out), run_dir)
            raise
        mark(run_dir, FINISHED, returncode=0,
             trial_state="pruned" if report.stopped else "complete")
        record_run(Path(out), run_dir)


def claim_trial(out: Path, params: dict[str, Any]) -> int:
    """This Ray trial's Optuna trial: the first running one with these values that no run
    folder claimed yet; it gets the `folder` attribute the local backend sets."""
    import optuna

    study = optuna.load_study(study_name="loralab", storage=storage(out))
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.params == params and "folder" not in trial.user_attrs:
            study._storage.set_trial_user_attr(trial._trial_id, "folder", "claimed")
            return trial.number
    raise UserError(f"no running trial of the study has the values {params}")


def set_folder(out: Path, number: int, folder: str) -> None:
    import optuna

    study = optuna.load_study(study_name="loralab", storage=storage(out))
    trial = study.get_trials(deepcopy=False)[number]
    study._storage.set_trial_user_attr(trial._trial_id, "folder", folder)


def settle_stopped(out: Path) -> int:
    """Trials Ray killed mid-run are recorded as pruned; returns the trials ASHA stopped."""
    count = 0
    for run_dir in sorted((out / TRIALS_DIR).glob("*")):
        status = read_status(run_dir)
        if status.get("status") == RUNNING and read_metrics(run_dir) is None:
            status = mark(run_dir, KILLED, error="stopped early by Ray Tune's ASHA scheduler",
                          trial_state="pruned")
        count += status.get("trial_state") == "pruned"
        record_run(out, run_dir)
    return count


def run_ray_study(out: Path, settings: dict[str, Any], space: Space, address: str | None,
                  jobs: int = 1) -> int:
    tune = import_ray_tune()
    import optuna
    import ray
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    params = list(space.params)
    greater = settings["direction"] == "maximize"
    base = settings["base"]
    epochs = [base["training"]["epochs"], *(p.high or max(p.values) for p in params
                                           if p.key == "training.epochs")]
    evaluations = max(1, math.ceil(max(epochs)))
    searcher = OptunaSearch(space=DefineByRun(params), metric=OBJECTIVE,
                            mode="max" if greater else "min",
                            sampler=make_sampler(settings["seed"], settings["trials"]),
                            storage=storage(out), study_name="loralab")
    # max_t one past the last evaluation: reaching it would end the trial before it saves
    scheduler = ASHAScheduler(time_attr="evaluation", metric=OBJECTIVE,
                              mode="max" if greater else "min", max_t=evaluations + 1,
                              grace_period=1, reduction_factor=2)
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE",
                                                                               "0")}})
    trainable = tune.with_resources(
        tune.with_parameters(ray_trial, out=str(out.resolve()), base_raw=base, space=params,
                             greater=greater, group={k: v for k, v in os.environ.items()
                                                     if k.startswith("LORALAB_")}),
        {"cpu": base["training"].get("threads") or 1})
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
        search_alg=searcher, scheduler=scheduler, num_samples=settings["trials"],
        max_concurrent_trials=jobs),
        run_config=tune.RunConfig(storage_path=str((out / "ray").resolve()), name="study",
                                  verbose=0))
    results = tuner.fit()
    stopped = settle_stopped(out)
    errors = sum(1 for r in results if r.error)
    print(f"ray tune: {len(results)} trials ({stopped} stopped by ASHA, {errors} failed)",
          flush=True)
    from loralab.experiments.tune.report import write_study_outputs

    study = optuna.load_study(study_name="loralab", storage=storage(out))
    return write_study_outputs(out, study, settings)
