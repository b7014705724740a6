"""The training recipe: `loralab train CONFIG` from data to the saved adapter, in named steps.

    recipe = TrainingRecipe(config, output_dir)
    metrics = recipe.run()   # setup_data -> setup_model -> setup_optimizer -> fit -> finish

One optimizer step is `_train_step`: forward under autocast, task loss (+ the weighted
variant's regulariser), backward scaled for gradient accumulation, clip, step, schedule.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import set_seed

from loralab.config import Config
from loralab.data import load_splits
from loralab.errors import ConfigError
from loralab.evaluation.evaluate import evaluate
from loralab.models.build import BuiltModel, build_model, set_unfrozen_trainable
from loralab.tasks import get_task
from loralab.training.batches import make_loader
from loralab.training.checkpoint import (
    remove_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    set_rng_states,
)
from loralab.training.diagnostics import DiagnosticsLog
from loralab.training.optim import build_optimizer, build_scheduler, mixed_precision
from loralab.training.run_folder import RunFolder
from loralab.training.selection import BestTracker
from loralab.training.weighted import WeightedLoRA


class TrainingRecipe:
    def __init__(self, config: Config, output_dir: str | Path, *, progress: bool = True,
                 overwrite: bool = False, resume: bool = False) -> None:
        """`resume`: continue from the run folder's checkpoint when it holds one."""
        self.config = config
        self.cfg = config.training
        self.progress = progress
        self.task = get_task(config.model.task, config)
        self.run = RunFolder(Path(output_dir), overwrite=overwrite)
        self.accelerator = Accelerator(mixed_precision=mixed_precision(self.cfg.precision))
        self.weighted: WeightedLoRA | None = None
        self.step = 0
        self.resume_state = self.run.checkpoint_for(config) if resume else None
        self.resumed_from_step = self.resume_state["step"] if self.resume_state else None

    # ------------------------------------------------------------------ setup
    def setup_data(self) -> None:
        self.splits = load_splits(self.config.data, self.config.model.task)
        self.labels = self.task.label_names(self.splits["train"], self.config)

    def setup_model(self) -> None:
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        set_seed(self.cfg.seed)
        self.built: BuiltModel = build_model(self.config, self.task, self.labels)
        tokenizer, max_len = self.built.tokenizer, self.config.model.max_length
        self.features = {name: self.task.encode(records, tokenizer, self.labels, max_len)
                         for name, records in self.splits.items()}
        self.features["train"] = self.task.pack_training(self.features["train"], max_len)
        self.built.notes.extend(self.task.notes)
        self.model = self.built.model.to(self.accelerator.device)
        for note in self.built.notes:
            tqdm.write(f"note: {note}")
        self.task.teacher = self.load_teacher()
        if self.config.lora.method == "weighted":
            self.weighted = WeightedLoRA(self.model, self.config.lora)

    @property
    def trains(self) -> bool:
        """False for a causal LM's no-LoRA baseline: the base model is only evaluated."""
        return self.config.lora.enabled or self.task.name != "causal_lm"

    def load_teacher(self) -> torch.nn.Module | None:
        """A named KD teacher (training.loss kd with teacher:), frozen, in eval mode."""
        names = {t.teacher for t in self.cfg.loss if t.type == "kd" and t.teacher}
        if not names:
            return None
        if len(names) > 1:
            raise ConfigError("training.loss: give at most one kd teacher")
        from loralab.models.causal import load_causal_model

        teacher = load_causal_model(self.config, name=names.pop())
        teacher.requires_grad_(False)
        return teacher.to(self.accelerator.device).eval()

    def setup_optimizer(self) -> None:
        cfg = self.cfg
        self.train_loader = make_loader(
            self.features["train"], self.task.collator(self.built.tokenizer), cfg.batch_size,
            train=True, seed=cfg.seed, group_by_length=cfg.group_by_length)
        self.steps_per_epoch = max(math.ceil(len(self.train_loader)
                                             / cfg.gradient_accumulation_steps), 1)
        self.total_steps = cfg.max_steps or math.ceil(self.steps_per_epoch * cfg.epochs)
        optimizer = build_optimizer(self.model, cfg, self.built.unfrozen_layers)
        # accelerate wraps the optimizer so fp16 loss scaling (scale, unscale, skip on overflow)
        # and, under `accelerate launch`, distributed data parallelism are handled for us
        self.model, self.optimizer = self.accelerator.prepare(self.model, optimizer)
        self.scheduler = build_scheduler(optimizer, cfg, self.total_steps)

    # ------------------------------------------------------------------ training
    def _train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, float, dict]:
        """Forward + backward of one micro-batch; returns (task loss, regulariser, the loss's
        named terms)."""
        gold = batch.pop("labels")
        if self.weighted is not None:
            self.weighted.begin_step(batch.get("attention_mask"))
        with self.accelerator.autocast():
            logits = self.model(**batch, **self.task.model_kwargs).logits
            loss, parts = self.task.training_loss(self.model, batch, logits, gold)
        reg = torch.zeros((), device=loss.device)
        if self.weighted is not None:
            correct = self.task.correct(logits.detach(), gold, self.config.lora.reg_tolerance)
            reg = self.weighted.regulariser(correct).to(loss.device)
        self.accelerator.backward((loss + reg) / self.cfg.gradient_accumulation_steps)
        return float(loss.detach()), float(reg.detach()), {k: float(v) for k, v in parts.items()}

    def _optimizer_step(self) -> float | None:
        grad_norm = None
        if self.cfg.max_grad_norm:
            params = [p for p in self.model.parameters() if p.requires_grad]
            grad_norm = float(self.accelerator.clip_grad_norm_(params, self.cfg.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return grad_norm

    def _maybe_unfreeze(self, epoch: int) -> None:
        if self.built.unfrozen_layers and epoch == self.cfg.unfreeze_after_epoch:
            count = set_unfrozen_trainable(self.model, self.built.unfrozen_layers, True)
            tqdm.write(f"epoch {epoch}: unfroze the top {len(self.built.unfrozen_layers)} "
                       f"layers ({count:,} parameters)")

    def fit(self) -> None:
        cfg = self.cfg
        self.tracker = BestTracker(self.model, cfg, self.task.default_metric)
        self.epoch_seconds: list[float] = []
        self.train_seconds, self.samples_seen, self.last_eval_step = 0.0, 0, None
        self.epoch_elapsed = self.resumed_epoch_seconds = 0.0
        epoch, skip = self._resume()
        self.diagnostics = DiagnosticsLog(self.run.diagnostics_path, cfg.logging_steps,
                                          resume_step=self.resumed_from_step)
        self.bar = tqdm(total=self.total_steps, initial=self.step, desc="train",
                        disable=not self.progress)
        stop = False
        self.model.train()
        while self.step < self.total_steps and not stop:
            self._maybe_unfreeze(epoch)
            stop = self._train_epoch(epoch, skip)
            epoch, skip = epoch + 1, 0
            if cfg.eval_strategy == "epoch" and not stop:
                stop = self._evaluate_and_track(float(epoch))
            if cfg.checkpoint == "epoch" and not stop and self.step < self.total_steps:
                save_checkpoint(self, epoch=epoch, micro=0, generator=self._generator_state())
        self.bar.close()
        self.diagnostics.close(self.step, float(epoch))
        self.epochs_run = epoch

    def _generator_state(self) -> torch.Tensor:
        return self.train_loader.sampler.generator.get_state()

    def _resume(self) -> tuple[int, int]:
        """(epoch, micro-batches of it already done): (0, 0) for a fresh run."""
        state = self.resume_state
        if state is None:
            return 0, 0
        restore_checkpoint(self, state)
        self.train_loader.sampler.generator.set_state(state["epoch_generator"])
        set_rng_states(state["rng"])
        if self.built.unfrozen_layers and state["epoch"] > self.cfg.unfreeze_after_epoch:
            set_unfrozen_trainable(self.model, self.built.unfrozen_layers, True)
        self.resumed_epoch_seconds = state["counters"]["epoch_elapsed"]
        where = f"epoch {state['epoch']}" + (f", batch {state['micro']}" if state["micro"] else "")
        tqdm.write(f"resuming from the checkpoint at step {self.step} ({where})")
        return state["epoch"], state["micro"]

    def _train_epoch(self, epoch: int, skip: int = 0) -> bool:
        """One pass over the training data (or until max_steps); True when training must stop.

        `skip`: micro-batches of this epoch already trained before a resume (the sampler's
        shuffling state was restored, so the same batches come in the same order).
        Time spent in evaluations and checkpoints inside the epoch is not counted.
        """
        cfg, device = self.cfg, self.accelerator.device
        self.epoch_generator_state = self._generator_state()
        self.epoch_elapsed = self.resumed_epoch_seconds if skip else 0.0
        started, stop = time.perf_counter(), False
        for micro, batch in enumerate(self.train_loader, start=1):
            if micro <= skip:
                continue
            batch = {k: v.to(device) for k, v in batch.items()}
            self.samples_seen += int(batch["input_ids"].shape[0])
            loss, reg, parts = self._train_step(batch)
            self.diagnostics.add(loss, reg, parts)
            if micro % cfg.gradient_accumulation_steps and micro != len(self.train_loader):
                continue
            grad_norm = self._optimizer_step()
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}")
            self.diagnostics.maybe_write(self.step, self._epoch_position(epoch, micro),
                                         self.scheduler.get_last_lr()[0], grad_norm)
            if self.step >= self.total_steps:
                break
            if self._mid_epoch_due(micro):
                self.epoch_elapsed += time.perf_counter() - started
                stop = self._mid_epoch_events(epoch, micro)
                started = time.perf_counter()
                if stop:
                    break
        self.epoch_elapsed += time.perf_counter() - started
        self.train_seconds += self.epoch_elapsed
        self.epoch_seconds.append(round(self.epoch_elapsed, 3))
        self.epoch_elapsed = 0.0
        return stop

    def _mid_epoch_due(self, micro: int) -> bool:
        cfg = self.cfg
        return (cfg.eval_strategy == "steps" and self.step % cfg.eval_steps == 0) or (
            cfg.checkpoint == "steps" and self.step % cfg.checkpoint_steps == 0
            and micro < len(self.train_loader))

    def _mid_epoch_events(self, epoch: int, micro: int) -> bool:
        """Step-based evaluation, then checkpoint; True when early stopping says stop."""
        cfg, stop = self.cfg, False
        if cfg.eval_strategy == "steps" and self.step % cfg.eval_steps == 0:
            stop = self._evaluate_and_track(epoch + micro / len(self.train_loader))
        if cfg.checkpoint == "steps" and self.step % cfg.checkpoint_steps == 0 and not stop:
            save_checkpoint(self, epoch=epoch, micro=micro,
                            generator=self.epoch_generator_state)
        return stop

    def _epoch_position(self, epoch: int, micro: int) -> float:
        return round(epoch + micro / len(self.train_loader), 4)

    def _evaluate_and_track(self, epoch: float) -> bool:
        """Evaluate, remember the best weights; True when early stopping says stop."""
        metrics = self.evaluate_split("validation")
        self.last_eval_step = self.step
        self.diagnostics.write_eval(self.step, epoch, metrics)
        tqdm.write(f"eval epoch {epoch:g}: " + ", ".join(
            f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        return self.tracker.update(metrics, self.step, epoch)

    def evaluate_split(self, split: str) -> dict[str, Any]:
        metrics = evaluate(self.model, self.task, self.features[split], self.labels,
                           self.built.tokenizer, self.cfg.eval_batch_size,
                           autocast=self.accelerator.autocast, progress=self.progress,
                           desc=split)
        if self.config.eval.generate:
            metrics.update(self.generation_metrics(split))
        return metrics

    def generation_metrics(self, split: str) -> dict[str, float]:
        """The data.metrics suites on a seeded sample of eval.max_samples generated answers."""
        from loralab.data.splits import sample
        from loralab.evaluation.generation_eval import generation_metrics

        records = sample(self.splits[split], self.config.eval.max_samples,
                         self.config.data.split_seed)
        model = self.accelerator.unwrap_model(self.model)
        with self.accelerator.autocast():
            metrics, self.last_generations = generation_metrics(
                model, self.built.tokenizer, self.task.format, records, self.config,
                progress=self.progress, desc=f"{split} generate")
        return metrics

    # ------------------------------------------------------------------ finish
    def finish(self) -> dict[str, Any]:
        """Final metrics (of the last weights), then the chosen adapter and metrics.json."""
        final = self.tracker.last if self.last_eval_step == self.step else None
        final = final or self.evaluate_split("validation")
        if self.tracker.best is None:
            self.tracker.update(final, self.step, float(self.epochs_run))
        if self.cfg.save_strategy == "best":
            self.tracker.restore_best()
        if self.weighted is not None:
            self.weighted.remove()
        test = None
        if self.splits.get("test") and all(self.task.has_gold(r) for r in self.splits["test"]):
            test = self.evaluate_split("test")
        adapter = None
        if self.config.lora.enabled:
            adapter = self.run.save_adapter(self.accelerator.unwrap_model(self.model),
                                            self.built, self.config, self.labels)
        metrics = self.run.write_metrics(self, final=final, test=test, adapter=adapter)
        remove_checkpoint(self.run.path)
        return metrics

    def run_all(self) -> dict[str, Any]:
        self.run.start(self.config)
        self.setup_data()
        self.setup_model()
        if self.trains:
            self.setup_optimizer()
            self.fit()
        else:
            self.skip_training()
        return self.finish()

    def skip_training(self) -> None:
        """Evaluation only (a causal LM's no-LoRA baseline): the counters of zero steps."""
        self.tracker = BestTracker(self.model, self.cfg, self.task.default_metric)
        self.epoch_seconds, self.train_seconds, self.samples_seen = [], 0.0, 0
        self.last_eval_step, self.epochs_run = None, 0


def train(config: Config, output_dir: str | Path, *, progress: bool = True,
          overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    return TrainingRecipe(config, output_dir, progress=progress, overwrite=overwrite,
                          resume=resume).run_all()
