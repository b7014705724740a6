"""One trial in its own process: `python -m loralab.experiments.tune.trial_worker DIR NUMBER`.

The parent asked the study for the trial and wrote its run folder (config.yaml, run.json);
this process trains it with an evaluation callback that reports each epoch's validation metric
to the study and stops the run when the pruner says so (a pruned trial is still an ordinary
run folder: its best weights saved, metrics.json written). It tells the study how the trial
ended itself, so a trial whose parent was killed still finishes and counts. It holds the run
folder's lock like a grid worker, and records the run in DIR/index.sqlite.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from loralab.errors import UserError
from loralab.experiments.index import record_run
from loralab.experiments.records import FAILED, FINISHED, KILLED, RUNNING
from loralab.experiments.status import CONFIG_FILE, mark, read_metrics
from loralab.experiments.tune.layout import TRIALS_DIR, read_settings
from loralab.experiments.tune.study import open_study, require_optuna
from loralab.models.library_logging import quiet_libraries
from loralab.training.callbacks import TrainingCallback
from loralab.training.run_lock import hold_run_lock

COMPLETE, PRUNED = "complete", "pruned"


class PruningCallback(TrainingCallback):
    """Reports the selection metric after each evaluation (step = the evaluation's number,
    1, 2, ...: epochs for eval_strategy=epoch); stops training when the pruner says so."""

    def __init__(self, trial: Any) -> None:
        self.trial, self.evaluations, self.pruned = trial, 0, False

    def on_evaluate(self, step: int, epoch: float, metrics: dict[str, Any],
                    value: float) -> bool:
        self.evaluations += 1
        self.trial.report(float(value), self.evaluations)
        if self.trial.should_prune():
            self.pruned = True
            print(f"trial {self.trial.number}: pruned after evaluation {self.evaluations} "
                  f"({value:.4f})", flush=True)
        return self.pruned


def objective_value(run_dir: Path) -> float:
    metrics = read_metrics(run_dir) or {}
    key = "best" if metrics.get("saved", "best") == "best" else "final"
    chosen = metrics.get(key) or metrics.get("final") or {}
    return float(chosen[metrics["metric_for_best"]])


def train_trial(run_dir: Path, trial: Any) -> str:
    from loralab.config import parse_yaml, validate_config
    from loralab.training.recipe import train

    threads = os.environ.get("LORALAB_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    config = validate_config(parse_yaml((run_dir / CONFIG_FILE).read_text(encoding="utf-8")))
    callback = PruningCallback(trial)
    train(config, run_dir, progress=False, resume=True, callbacks=[callback])
    return PRUNED if callback.pruned else COMPLETE


def run_trial(out: Path, number: int) -> int:
    optuna = require_optuna()
    settings = read_settings(out)
    study = open_study(out, settings["direction"], settings["pruner"], settings["seed"],
                       settings["trials"])
    frozen = study.get_trials(deepcopy=False)[number]
    trial = optuna.trial.Trial(study, frozen._trial_id)
    run_dir = out / TRIALS_DIR / frozen.user_attrs["folder"]
    state = optuna.trial.TrialState
    with hold_run_lock(run_dir):
        try:
            mark(run_dir, RUNNING, pid=os.getpid(), trial=number)
            ended = train_trial(run_dir, trial)
            mark(run_dir, FINISHED, returncode=0, trial_state=ended)
        except KeyboardInterrupt:
            mark(run_dir, KILLED, error="interrupted; the next loralab tune resumes it",
                 returncode=130, trial_state=FAILED)
            study._storage.set_trial_user_attr(frozen._trial_id, "killed", True)
            study.tell(number, state=state.FAIL, skip_if_finished=True)
            return 130
        except BaseException as exc:  # noqa: BLE001 - any crash is a failed trial
            code = exc.exit_code if isinstance(exc, UserError) else 1
            if not isinstance(exc, UserError):
                traceback.print_exc()
            error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            print(f"loralab: error: {error}", file=sys.stderr)
            mark(run_dir, FAILED, error=error, returncode=code, trial_state=FAILED)
            study.tell(number, state=state.FAIL, skip_if_finished=True)
            record_run(out, run_dir)
            return code
        record_run(out, run_dir)
        value = objective_value(run_dir)
        if ended == PRUNED:
            study._storage.set_trial_user_attr(frozen._trial_id, "pruned_value", value)
            study.tell(number, state=state.PRUNED, skip_if_finished=True)
        else:
            study.tell(number, value, skip_if_finished=True)
    return 0


def main(argv: list[str]) -> int:
    quiet_libraries()
    out, number = Path(argv[0]), int(argv[1])
    code = run_trial(out, number)
    print(json.dumps({"trial": number, "exit": code}), flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
