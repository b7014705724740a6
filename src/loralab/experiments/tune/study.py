"""The Optuna study of a tune folder: DIR/study.journal (Optuna's JournalStorage on its
lock-safe file backend), the seeded TPE sampler, the pruner, and which trials count.

Several processes (or machines sharing the folder) open the same journal and work on one
study. A trial's process holds DIR/locks/trial-NNNN.lock while the trial runs; a running
trial whose lock nobody holds was killed with its process, and the next `loralab tune`
marks it failed (`killed`) and queues its parameters again: the retry trains in the killed
trial's run folder and resumes from its checkpoint.
"""

from __future__ import annotations

import datetime
import fcntl
import os
from pathlib import Path
from typing import Any

from loralab.errors import UserError

JOURNAL_FILE = "study.journal"
LOCKS_DIR = "locks"
STUDY_NAME = "loralab"
EXTRA = "tune"


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UserError("loralab tune needs Optuna: pip install 'loralab[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage(out: Path) -> Any:
    optuna = require_optuna()
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(out / JOURNAL_FILE)
    return optuna.storages.JournalStorage(JournalFileBackend(path, JournalFileOpenLock(path)))


def make_pruner(name: str, trials: int) -> Any:
    """median: stop a trial whose metric after an epoch is worse than the median of the
    earlier trials at that epoch; halving: successive halving (rungs at 1, 2, 4 ... epochs)."""
    optuna = require_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, trials // 4)),
                                           n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    return optuna.pruners.NopPruner()


def make_sampler(seed: int, trials: int, started: int = 0) -> Any:
    """TPE, seeded: the same seed and history give the same next trial. `started`: trials
    already started, folded into the seed so that processes joining a study do not repeat
    the random start-up trials of the first one."""
    optuna = require_optuna()
    return optuna.samplers.TPESampler(seed=seed + 7919 * started,
                                      n_startup_trials=max(2, min(10, trials // 3)))


def open_study(out: Path, direction: str, pruner: str, seed: int, trials: int) -> Any:
    optuna = require_optuna()
    return optuna.create_study(storage=storage(out), study_name=STUDY_NAME,
                               direction=direction, load_if_exists=True,
                               sampler=make_sampler(seed, trials),
                               pruner=make_pruner(pruner, trials))


def lock_path(out: Path, number: int) -> Path:
    return out / LOCKS_DIR / f"trial-{number:04d}.lock"


def hold_trial_lock(out: Path, number: int) -> int:
    """An open file descriptor holding the trial's lock (passed on to the trial's process:
    the lock lasts as long as either holds it)."""
    path = lock_path(out, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def trial_alive(out: Path, number: int) -> bool:
    path = lock_path(out, number)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def killed(trial: Any) -> bool:
    return bool(trial.user_attrs.get("killed"))


def recover_killed(study: Any, out: Path) -> list[int]:
    """Mark running trials whose process is gone as failed (killed) and queue each killed
    trial's parameters again once; returns the numbers of the trials queued again."""
    optuna = require_optuna()
    running = optuna.trial.TrialState.RUNNING
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(running,)):
        if trial_alive(out, trial.number):
            continue
        # another process may have asked for it a moment ago and not locked it yet; a lock
        # file nobody holds means its process died (a kill right after it started included)
        just_asked = trial.datetime_start and (now - trial.datetime_start).total_seconds() < 5
        if not (just_asked and not lock_path(out, trial.number).exists()):
            study._storage.set_trial_user_attr(trial._trial_id, "killed", True)
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL,
                       skip_if_finished=True)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = []
    for trial in trials:
        if killed(trial) and trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={
                "retry_of": trial.number, "folder": trial.user_attrs.get("folder")})
            queued.append(trial.number)
    return queued


def counted(study: Any) -> int:
    """Trials that count towards --trials: finished, pruned, failed (not killed) or running."""
    optuna = require_optuna()
    state = optuna.trial.TrialState
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (state.COMPLETE, state.PRUNED, state.RUNNING)
               or (t.state == state.FAIL and not killed(t)))
