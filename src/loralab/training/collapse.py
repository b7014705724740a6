"""What a run does when its first epoch collapses: `training.on_collapse` (issue 17 item 3).

Collapsed after epoch 1 = the training loss of epoch 1 is more than 5 % above the label
prior's AND the evaluation at the end of epoch 1 gives one answer whatever the input (every
prediction one class: MCC exactly 0; the one rule: loralab.training.prior_check.collapsed).
The evaluation is made only when the loss is at the prior (the warning); with
`eval_strategy: epoch` it is the epoch's own. Then:

    restart  (default) once: the initial trainable weights, the RNGs and the sampler's state put
             back, a fresh optimizer, every learning rate divided by RESTART_FACTOR, the same
             number of steps. The restarted run is an ordinary run from there on (the epoch-1
             evaluation that showed the collapse is in diagnostics.jsonl, but no best-weights
             tracker, early stopping or tune pruner sees it), bit for bit the run one would get
             with `--set training.learning_rate=<lr / RESTART_FACTOR>`. A second collapse does
             not restart again: it prints the warning, as `warn` does.
    warn     the warning line only (the behaviour before on_collapse).
    stop     the warning, then training stops the way early stopping does.

metrics.json records each restart under `restarts` ({epoch, steps, reason, learning_rate,
new_learning_rate}); the checkpoint carries them, so a resumed run knows it restarted and
trains on at the lowered rate.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from loralab.training.optim import build_scheduler
from loralab.training.prior_check import collapsed, overshoot, stuck_at_prior
from loralab.training.selection import BestTracker, saved_parameters
from loralab.training.train_state import rng_states, set_rng_states

# lr / 3 after a collapse at lr: measured on MRPC (docs/benchmarks.md#collapse-restart)
RESTART_FACTOR = 3


class CollapseHandling:
    """The collapse check and the restart, as methods of TrainingRecipe (which provides the
    attributes used here: cfg, task, state, features, labels, raw_model, optimizer, ...)."""

    state: Any
    cfg: Any

    @property
    def learning_rate_now(self) -> float:
        return self.cfg.learning_rate / RESTART_FACTOR ** len(self.state.restarts)

    def remember_initial(self) -> None:
        """What a restart goes back to: taken when a fresh run starts training."""
        state = self.state
        if self.cfg.on_collapse == "restart" and not state.restarts and state.initial is None:
            state.initial = {
                "weights": {n: p.detach().to("cpu", copy=True)
                            for n, p in saved_parameters(self.raw_model)},
                "rng": rng_states(), "generator": state.generator.get_state()}

    def _say(self, line: str) -> None:
        self.built.notes.append(line)
        if self.main:
            tqdm.write(line)

    def _first_epoch_losses(self) -> list[float]:
        """Epoch 1's losses; with several processes every process's, interleaved in step
        order, so that all of them take the same decision."""
        losses = self.state.first_epoch_losses
        if self.accelerator.num_processes == 1:
            return losses
        from accelerate.utils import gather_object

        per_process = gather_object([losses])
        return [loss for step in zip(*per_process) for loss in step]

    def after_first_epoch(self) -> tuple[str | None, dict[str, Any] | None]:
        """(action: "restart", "stop" or None; the evaluation made for the check, if any)."""
        state = self.state
        prior, losses = self.task.prior_loss(self.features["train"]), self._first_epoch_losses()
        warning = stuck_at_prior(prior, losses, self.learning_rate_now)
        state.first_epoch_losses = []
        if warning is None:
            return None, None
        if self.cfg.on_collapse == "warn":
            self._say(warning)
            return None, None
        metrics = None
        if overshoot(prior, losses):   # only then is the evaluation needed now
            metrics = self.evaluate_logged(1.0, tracked=self.cfg.eval_strategy == "epoch")
        reason = collapsed(prior, losses, metrics)
        # a run resumed from a checkpoint of an earlier version inside epoch 1 has no
        # initial state to go back to: it warns
        restartable = not state.restarts and state.initial is not None
        if reason and self.cfg.on_collapse == "restart" and restartable:
            self.restart(reason)
            return "restart", None
        self._say(warning)
        if reason and self.cfg.on_collapse == "stop":
            self._say(f"training.on_collapse=stop: training stopped after epoch 1 ({reason})")
            return "stop", metrics
        return None, metrics

    def restart(self, reason: str) -> None:
        state, old = self.state, self.learning_rate_now
        entry = {"epoch": 1, "steps": state.step, "reason": reason, "learning_rate": old,
                 "new_learning_rate": old / RESTART_FACTOR}
        self._say(f"collapse after epoch 1 ({reason}): restarting once from the initial "
                  f"adapter weights at "
                  f"training.learning_rate={entry['new_learning_rate']:g} (was {old:g}; "
                  f"training.on_collapse=restart)")
        self.diagnostics.write_restart(state.step, entry)
        initial = state.initial
        params = dict(self.raw_model.named_parameters())
        with torch.no_grad():
            for name, value in initial["weights"].items():
                params[name].copy_(value)
        set_rng_states(initial["rng"])
        state.generator.set_state(initial["generator"])
        state.restarts.append(entry)
        state.initial, state.step, state.epoch, state.micro = None, 0, 0, 0
        state.counters.last_eval_step = None
        state.tracker = BestTracker(self.raw_model, self.cfg, self.task.default_metric,
                                    self.metric_names)
        self.lower_rates()
        self.bar.reset(total=self.total_steps)
        if self.cfg.checkpoint != "no":
            self._checkpoint(0, 0)   # a resume from here knows the run restarted

    def lower_rates(self) -> None:
        """A fresh optimizer state and schedule, every group's rate / RESTART_FACTOR."""
        optimizer = getattr(self.optimizer, "optimizer", self.optimizer)  # accelerate's wrapper
        optimizer.state.clear()
        for group in optimizer.param_groups:
            group["initial_lr"] = group["lr"] = group["initial_lr"] / RESTART_FACTOR
        self.state.scheduler = build_scheduler(optimizer, self.cfg, self.total_steps)
