"""The training recipe: `loralab train CONFIG` from data to the saved adapter, in named steps.

    recipe = TrainingRecipe(config, output_dir)
    metrics = recipe.run_all()   # setup_data -> setup_model -> setup_optimizer -> fit -> finish

One optimizer step is `_train_step` (forward under autocast, the task's loss plus the LoRA
variant's extra term, backward scaled for gradient accumulation) for each micro-batch, then
`_optimizer_step` (clip, step, schedule). Everything that changes while training lives in one
TrainState (loralab.training.train_state), whose state_dict() is the checkpoint.

Under `accelerate launch --num_processes N` or `torchrun`, accelerate shards the training and
evaluation batches over the processes (DDP); only the main process writes (and tracks) it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import set_seed

from loralab.config import Config
from loralab.data.batches import make_loader
from loralab.data.loader import load_data
from loralab.errors import ConfigError, UserError
from loralab.evaluation.evaluate import evaluate
from loralab.metrics.metric_registry import resolve_metric
from loralab.models.build import BuiltModel, set_unfrozen_trainable
from loralab.models.placement import Placement, mixed_precision, resolve_device
from loralab.tasks import get_task
from loralab.training.adaptive import planned_steps
from loralab.training.callbacks import Callbacks, TrainingCallback
from loralab.training.checkpoint import Resuming, remove_checkpoint
from loralab.training.collapse import CollapseHandling
from loralab.training.diagnostics import DiagnosticsLog
from loralab.training.divergence import check_grad_norm, check_loss
from loralab.training.optim import build_optimizer, build_scheduler
from loralab.training.results import distributed_counts, run_metrics
from loralab.training.run_folder import RunFolder
from loralab.training.selection import BestTracker
from loralab.training.tracking import tracking_callbacks
from loralab.training.train_state import TrainState
from loralab.training.variants import lora_variant


class TrainingRecipe(CollapseHandling, Resuming):
    def __init__(self, config: Config, output_dir: str | Path, *, progress: bool = True,
                 overwrite: bool = False, resume: bool = False, adapter: str | None = None,
                 callbacks: Sequence[TrainingCallback] = ()) -> None:
        """`resume`: continue from the run folder's checkpoint when it holds one. `adapter`:
        the adapter this run trains in a model holding several (loralab.training.multi)."""
        if resume and overwrite:
            raise UserError("--resume continues the run in --output and --overwrite replaces "
                            "it: give one of them")
        self.config, self.adapter, self.cfg = config, adapter, config.training
        self.task = get_task(config.model.task, config)
        self.variant = lora_variant(config.lora)
        self.run = RunFolder(Path(output_dir), overwrite=overwrite)
        # cpu=True on a machine without a GPU: several processes (torchrun) then use gloo
        self.accelerator = Accelerator(
            mixed_precision=mixed_precision(self.cfg.precision, fp16_ok=self.variant.fp16_ok),
            cpu=resolve_device("auto").type == "cpu")
        self.main = self.accelerator.is_main_process
        tracking = tracking_callbacks(config, self.run.path) if self.main else []
        self.callbacks = Callbacks([*callbacks, *tracking])  # loralab.training.callbacks
        self.progress = progress and self.main
        self.resume_state = self.run.checkpoint_for(config) if resume else None

    # ------------------------------------------------------------------ setup
    def setup_data(self) -> None:
        """The splits, and the label set of every labelled record of every split before
        sampling: subsampling never drops a label the validation rows carry."""
        data = load_data(self.config.data, self.task.records)
        self.splits = data.splits
        self.labels = self.task.label_names(data.every_record, self.config)
        self.check_metric_for_best()

    @property
    def placement(self) -> Placement:
        return Placement(self.accelerator.device)

    def setup_model(self, built: BuiltModel | None = None) -> None:
        """The model to train (built here, or `built`: one adapter of a shared model), its
        encoded splits, and what the task prepares for training."""
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        set_seed(self.cfg.seed)
        placement = self.placement
        self.built: BuiltModel = built or self.task.build_model(self.config, self.labels,
                                                                placement)
        tokenizer, max_len = self.built.tokenizer, self.config.model.max_length
        self.features = {name: self.task.encode(records, tokenizer, self.labels, max_len)
                         for name, records in self.splits.items()}
        self.features["train"] = self.task.pack_training(self.features["train"], max_len)
        self.built.notes.extend(self.task.notes + self.variant.notes())
        self.model = self.built.model.to(self.accelerator.device)
        for note in self.built.notes if self.main else []:
            tqdm.write(f"note: {note}")
        self.task.prepare_training(self.config, placement)
        self.variant.attach(self.model)

    def setup_optimizer(self) -> None:
        cfg = self.cfg
        loader = make_loader(self.features["train"], self.task.collator(self.built.tokenizer),
                             cfg.batch_size, train=True, seed=cfg.seed,
                             group_by_length=cfg.group_by_length)
        generator = loader.sampler.generator
        self.raw_model = self.model
        optimizer = build_optimizer(self.model, cfg, self.built.unfrozen_layers)
        # accelerate wraps the optimizer so fp16 loss scaling (scale, unscale, skip on overflow)
        # is handled, and with several processes the model in DDP and the loader in shards
        self.model, self.optimizer = self.accelerator.prepare(self.model, optimizer)
        self.train_loader = self._shard(loader)
        self.steps_per_epoch = max(math.ceil(len(self.train_loader)
                                             / cfg.gradient_accumulation_steps), 1)
        self.total_steps, raised = planned_steps(cfg, self.steps_per_epoch)  # min_steps
        self.built.notes.extend([raised] if raised else [])
        scheduler = build_scheduler(optimizer, cfg, self.total_steps)
        tracker = BestTracker(self.raw_model, cfg, self.task.default_metric, self.metric_names)
        self.state = TrainState(self.raw_model, self.optimizer, scheduler,
                                self.accelerator.scaler, tracker, generator)

    def _shard(self, loader: Any) -> Any:
        """The loader as is in one process; sharded over the processes by accelerate in DDP."""
        if self.accelerator.num_processes == 1:
            return loader
        if self.built.unfrozen_layers and self.cfg.unfreeze_after_epoch > 0:
            raise ConfigError("training.unfreeze_after_epoch > 0 cannot run in several "
                              "processes (DDP fixes the trained parameters when it starts); "
                              "set it to 0 to train the unfrozen layers from the start")
        return self.accelerator.prepare_data_loader(loader)

    @property
    def trains(self) -> bool:
        return self.task.trains(self.config)

    # ------------------------------------------------------------------ training
    def _train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, float, dict]:
        """Forward + backward of one micro-batch: (task loss, variant's term, named terms)."""
        gold = batch.pop("labels")
        self.variant.begin_step(batch)
        with self.accelerator.autocast():
            out = self.task.training_forward(self.model, self.raw_model, batch, gold)
        reg = self.variant.extra_loss(self.task, out.scores, gold).to(out.loss.device)
        self.accelerator.backward((out.loss + reg) / self.cfg.gradient_accumulation_steps)
        return (float(out.loss.detach()), float(reg.detach()),
                {k: float(v) for k, v in out.parts.items()})

    def _optimizer_step(self) -> float | None:
        grad_norm = None
        if self.cfg.max_grad_norm:
            params = [p for p in self.model.parameters() if p.requires_grad]
            grad_norm = float(self.accelerator.clip_grad_norm_(params, self.cfg.max_grad_norm))
        self.optimizer.step()
        self.state.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        return grad_norm

    def _maybe_unfreeze(self, epoch: int) -> None:
        if self.built.unfrozen_layers and epoch == self.cfg.unfreeze_after_epoch:
            count = set_unfrozen_trainable(self.raw_model, self.built.unfrozen_layers, True)
            if self.main:
                tqdm.write(f"epoch {epoch}: unfroze the top {len(self.built.unfrozen_layers)} "
                           f"layers ({count:,} parameters)")

    def fit(self) -> None:
        cfg, state = self.cfg, self.state
        epoch, skip = self._resume()
        self.diagnostics = DiagnosticsLog(self.run.diagnostics_path, cfg.logging_steps,
                                          resume_step=state.resumed_from_step,
                                          enabled=self.main, on_line=self.callbacks.on_log,
                                          offset=sum(r["steps"] for r in state.restarts))
        self.bar = tqdm(total=self.total_steps, initial=state.step, desc="train",
                        disable=not self.progress)
        stop = False
        self.model.train()
        self.remember_initial()   # training.on_collapse=restart goes back to it
        while state.step < self.total_steps and not stop:
            self._maybe_unfreeze(epoch)
            stop = self._train_epoch(epoch, skip)
            epoch, skip, checked = epoch + 1, 0, None
            if epoch == 1 and not stop:
                action, checked = self.after_first_epoch()  # training.on_collapse
                if action == "restart":
                    epoch = 0
                    continue
                stop = action == "stop"
            if cfg.eval_strategy == "epoch" and (not stop or checked is not None):
                stop = self._evaluate_and_track(float(epoch), checked) or stop
            if cfg.checkpoint == "epoch" and not stop and state.step < self.total_steps:
                self._checkpoint(epoch, 0)
        self.bar.close()
        self.diagnostics.close(state.step, float(epoch))
        self.epochs_run = epoch

    def _train_epoch(self, epoch: int, skip: int = 0) -> bool:
        """One pass over the training data (or until max_steps); True when training must stop.

        `skip`: micro-batches of this epoch already trained before a resume (the sampler's
        shuffling state was restored, so the same batches come in the same order).
        Time spent in evaluations and checkpoints inside the epoch is not counted.
        """
        cfg, device, state = self.cfg, self.accelerator.device, self.state
        counters = state.counters
        state.start_epoch(epoch)  # the sampler's generator holds the epoch's starting state
        counters.epoch_elapsed = counters.epoch_elapsed if skip else 0.0
        started, stop = time.perf_counter(), False
        losses = state.first_epoch_losses if epoch == 0 else []  # the collapse check's
        if not skip:
            losses.clear()
        for micro, batch in enumerate(self.train_loader, start=1):
            if micro <= skip:
                continue
            batch = {k: v.to(device) for k, v in batch.items()}
            counters.samples_seen += int(batch["input_ids"].shape[0])
            loss, reg, parts = self._train_step(batch)
            check_loss(self.config, state.step + 1, loss, reg, parts)
            losses.append(loss)
            self.diagnostics.add(loss, reg, parts)
            if micro % cfg.gradient_accumulation_steps and micro != len(self.train_loader):
                continue
            grad_norm = self._optimizer_step()
            check_grad_norm(self.config, state.step, grad_norm, state.scaler)
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}")
            self.diagnostics.maybe_write(state.step, self._epoch_position(epoch, micro),
                                         state.scheduler.get_last_lr()[0], grad_norm)
            if state.step >= self.total_steps:
                break
            if self._mid_epoch_due(micro):
                counters.epoch_elapsed += time.perf_counter() - started
                stop = self._mid_epoch_events(epoch, micro)
                started = time.perf_counter()
                if stop:
                    break
        counters.epoch_elapsed += time.perf_counter() - started
        counters.train_seconds += counters.epoch_elapsed
        counters.epoch_seconds.append(round(counters.epoch_elapsed, 3))
        counters.epoch_elapsed = 0.0
        return stop

    def _mid_epoch_due(self, micro: int) -> bool:
        cfg, step = self.cfg, self.state.step
        return (cfg.eval_strategy == "steps" and step % cfg.eval_steps == 0) or (
            cfg.checkpoint == "steps" and step % cfg.checkpoint_steps == 0
            and micro < len(self.train_loader))

    def _mid_epoch_events(self, epoch: int, micro: int) -> bool:
        """Step-based evaluation, then checkpoint; True when early stopping says stop."""
        cfg, step, stop = self.cfg, self.state.step, False
        if cfg.eval_strategy == "steps" and step % cfg.eval_steps == 0:
            stop = self._evaluate_and_track(epoch + micro / len(self.train_loader))
        if cfg.checkpoint == "steps" and step % cfg.checkpoint_steps == 0 and not stop:
            self._checkpoint(epoch, micro)
        return stop

    def _epoch_position(self, epoch: int, micro: int) -> float:
        return round(epoch + micro / len(self.train_loader), 4)

    def evaluate_logged(self, epoch: float, *, tracked: bool = True) -> dict[str, Any]:
        """Evaluate on validation, logged and printed; `tracked` False: the collapse check's
        evaluation outside the schedule, which `finish` must not reuse."""
        metrics = self.evaluate_split("validation")
        if tracked:
            self.state.counters.last_eval_step = self.state.step
        self.diagnostics.write_eval(self.state.step, epoch, metrics)
        if self.main:
            tqdm.write(f"eval epoch {epoch:g}: " + ", ".join(
                f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        return metrics

    def _evaluate_and_track(self, epoch: float, metrics: dict[str, Any] | None = None) -> bool:
        """Evaluate (unless `metrics`: this evaluation's, made already), remember the best
        weights; True when early stopping or a callback says stop."""
        metrics = metrics or self.evaluate_logged(epoch)
        stop = self.state.tracker.update(metrics, self.state.step, epoch)
        value = metrics[self.state.tracker.metric]
        return self.callbacks.on_evaluate(self.state.step, epoch, metrics, value) or stop

    def evaluate_split(self, split: str) -> dict[str, Any]:
        metrics = evaluate(self.model, self.task, self.features[split], self.labels,
                           self.built.tokenizer, self.cfg.eval_batch_size,
                           autocast=self.accelerator.autocast, progress=self.progress,
                           desc=split, accelerator=self.accelerator)
        if self.config.eval.generate:
            metrics.update(self.generation_metrics(split))
        return metrics

    def generation_metrics(self, split: str) -> dict[str, float]:
        """The data.metrics suites on a seeded sample of eval.max_samples generated answers."""
        from loralab.data.splits import sample
        from loralab.evaluation.generation_eval import generation_metrics

        records = sample(self.splits[split], self.config.eval.max_samples,
                         self.config.data.split_seed)
        with self.accelerator.autocast():
            metrics, self.last_generations = generation_metrics(
                self.raw_model, self.built.tokenizer, self.task, records, self.config,
                progress=self.progress, desc=f"{split} generate")
        return metrics

    # ------------------------------------------------------------------ finish
    def finish(self) -> dict[str, Any]:
        """Final metrics (of the last weights), then the chosen adapter and metrics.json."""
        state, tracker = self.state, self.state.tracker
        final = tracker.last if state.counters.last_eval_step == state.step else None
        final = final or self.evaluate_split("validation")
        if tracker.best is None:
            tracker.update(final, state.step, float(self.epochs_run))
        if self.cfg.save_strategy == "best":
            tracker.restore_best()
        self.variant.detach()
        test = None
        if self.splits.get("test") and all(self.task.has_gold(r) for r in self.splits["test"]):
            test = self.evaluate_split("test")
        distributed = distributed_counts(self.accelerator, self.state.counters)
        if not self.main:
            return {}
        adapter = None
        if self.config.lora.enabled:
            adapter = self.run.save_adapter(self.raw_model, self.built, self.config,
                                            self.labels,
                                            self.task.input_fields(self.splits["train"]),
                                            adapter_name=self.adapter)
        metrics = run_metrics(
            self.config, state, self.built, epochs=self.epochs_run, final=final, test=test,
            adapter=adapter, sizes={k: len(v) for k, v in self.features.items()},
            trivial=self.task.baseline_metrics(self.features["validation"], self.labels),
            distributed=distributed)
        self.run.write_metrics(metrics)
        remove_checkpoint(self.run.path)
        self.callbacks.on_end(metrics, self.run.path)
        return metrics

    def run_all(self) -> dict[str, Any]:
        """Everything that can be refused is checked before the run folder is touched: data,
        labels, the model and its target modules, the metric to select by."""
        self.setup_data()
        self.setup_model()
        return self.run_prepared()

    def run_prepared(self) -> dict[str, Any]:
        """Train (or only evaluate) a recipe whose data and model are set up, writing the run
        folder; returns its metrics."""
        with self.run.writing() if self.main else nullcontext():
            if self.main:
                self.run.start(self.config)
            if self.trains:
                self.setup_optimizer()
                with self.run.stops_on_divergence(self.config, self.state, enabled=self.main):
                    self.fit()
            else:
                self.skip_training()
            return self.finish()

    def check_metric_for_best(self) -> None:
        """The metric to select by must be one the task reports (a per-group metric such as
        `mc_accuracy/physics`: its family must be)."""
        names = self.task.metric_names(self.config, self.labels)
        wanted = self.cfg.metric_for_best or self.task.default_metric
        resolve_metric(wanted.split("/")[0], names, key="training.metric_for_best")
        self.metric_names = None if "/" in wanted else names

    def skip_training(self) -> None:
        """Evaluation only (a causal LM's no-LoRA baseline): the counters of zero steps."""
        tracker = BestTracker(self.model, self.cfg, self.task.default_metric, self.metric_names)
        self.raw_model = self.model
        self.state = TrainState(self.model, None, None, None, tracker, torch.Generator())
        self.epochs_run = 0


def train(config: Config, output_dir: str | Path, *, progress: bool = True,
          overwrite: bool = False, resume: bool = False,
          callbacks: Sequence[TrainingCallback] = ()) -> dict[str, Any]:
    recipe = TrainingRecipe(config, output_dir, progress=progress, overwrite=overwrite,
                            resume=resume, callbacks=callbacks)
    try:
        return recipe.run_all()
    except BaseException as exc:
        recipe.callbacks.on_fail(exc)        # trackers close the run as failed / killed
        raise
