"""One trial from the parent's side: ask the study, write the run folder, run the trial's
process (loralab.experiments.tune.trial_worker), and settle a trial whose process died."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_text
from loralab.config import Config, dump_config, validate_config
from loralab.errors import ConfigError
from loralab.experiments.execute import child_env, signal_text
from loralab.experiments.index import record_run
from loralab.experiments.naming import dataset_label, model_label, run_id
from loralab.experiments.records import FAILED, PENDING, RUNNING
from loralab.experiments.status import (
    CONFIG_FILE,
    LOG_FILE,
    log_tail,
    mark,
    read_status,
    write_status,
)
from loralab.experiments.tune.layout import TRIALS_DIR
from loralab.experiments.tune.space import Space, apply_params
from loralab.experiments.tune.study import counted, hold_trial_lock, make_sampler


@dataclass
class Asked:
    number: int
    params: dict[str, Any]
    run_dir: Path | None        # None: the values make no valid config (the trial failed)
    config: Config | None
    lock_fd: int | None


def ask(study: Any, space: Space, base_raw: dict[str, Any], out: Path, seed: int,
        trials: int, lock: threading.Lock) -> Asked | None:
    """The next trial with its run folder written, or None when --trials are reached."""
    with lock:
        started = counted(study)
        if started >= trials:
            return None
        study.sampler = make_sampler(seed, trials, started)
        trial = study.ask()
        params = {p.key: p.suggest(trial) for p in space.params}
        try:
            config = validate_config(apply_params(base_raw, params))
        except ConfigError as exc:
            study._storage.set_trial_user_attr(trial._trial_id, "error", str(exc))
            study.tell(trial, state=trial_state().FAIL)
            return Asked(trial.number, params, None, None, None)
        folder = trial.user_attrs.get("folder") or f"{trial.number:04d}-{run_id(config)}"
        trial.set_user_attr("folder", folder)
        run_dir = out / TRIALS_DIR / folder
        fd = hold_trial_lock(out, trial.number)
        prepare_folder(run_dir, config, trial.number, params)
        return Asked(trial.number, params, run_dir, config, fd)


def trial_state() -> Any:
    import optuna

    return optuna.trial.TrialState


def prepare_folder(run_dir: Path, config: Config, number: int,
                   params: dict[str, Any]) -> None:
    """config.yaml and run.json: the trial is an ordinary (grid-like) run folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = dump_config(config)
    path = run_dir / CONFIG_FILE
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)
    status = read_status(run_dir)
    name = f"trial-{number:04d}"
    status.update(id=run_dir.name, name=name, variant=name,
                  model=model_label(config.model.name), dataset=dataset_label(config),
                  seed=config.training.seed, baseline=not config.lora.enabled, params=params,
                  trial=number, trial_state=RUNNING, status=status.get("status", PENDING),
                  attempts=status.get("attempts", 0))
    write_status(run_dir, status)


def run(asked: Asked, out: Path) -> int:
    """Run the trial's process; settle the trial if the process died without telling."""
    assert asked.run_dir is not None and asked.config is not None and asked.lock_fd is not None
    try:
        with (asked.run_dir / LOG_FILE).open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "loralab.experiments.tune.trial_worker", str(out),
                 str(asked.number)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=child_env(asked.config.training.threads),
                pass_fds=(asked.lock_fd,))
            try:
                code = child.wait()
            except KeyboardInterrupt:
                child.wait()
                raise
    finally:
        os.close(asked.lock_fd)
    if code not in (0, 130):
        settle(asked, out, code)
    return code


def settle(asked: Asked, out: Path, code: int) -> None:
    """A trial whose process ended without telling the study (a crash, a kill) fails."""
    import optuna

    study_trial = None
    try:
        from loralab.experiments.tune.study import storage

        study = optuna.load_study(study_name="loralab", storage=storage(out))
        study_trial = study.get_trials(deepcopy=False)[asked.number]
        if study_trial.state == trial_state().RUNNING:
            study.tell(asked.number, state=trial_state().FAIL, skip_if_finished=True)
    finally:
        assert asked.run_dir is not None
        if read_status(asked.run_dir).get("status") == RUNNING:
            mark(asked.run_dir, FAILED, error=signal_text(code), returncode=code,
                 trial_state=FAILED, log_tail=log_tail(asked.run_dir))
        record_run(out, asked.run_dir)
