"""Several adapters on one base model (`adapters:` configs): loaded once, trained one after the
other, saved as one PEFT multi-adapter folder and as one run folder per adapter.

    RUN/config.yaml          the multi-adapter config (written first)
    RUN/<adapter>/           a normal run folder per adapter: config.yaml (its resolved
                             single-adapter config), diagnostics.jsonl,
                             lora_<adapter>_<arch>_r<r>/ (a loralab adapter folder), metrics.json
    RUN/adapters/            PEFT's multi-adapter folder: <adapter>/ per adapter (PEFT's files,
                             plus tokenizer, label mapping, loralab config) + multi_adapter.json
    RUN/metrics.json         written last: {"kind": "loralab.multi_adapter_run",
                             "adapters": {<adapter>: the metrics.json of its run}, ...}

Each adapter trains with its own TrainingRecipe on the shared PEFT model, made active with
`set_adapter` (PEFT then lets only the active adapter's weights require grad, so the optimizer
holds them alone). Everything that can be refused (every adapter's data, targets, rank,
metric) is checked before RUN is touched; one process writes RUN (its lock), and --overwrite
writes beside a finished RUN and swaps at the end. --resume keeps the adapters whose run
finished (their weights are read back) and resumes the interrupted one from its checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import set_seed

from loralab.config import Config, dump_config
from loralab.errors import UserError
from loralab.evaluation.gate.results import read_json
from loralab.models.adapter_io import adapter_folder_name, save_multi_adapter
from loralab.tasks import get_task
from loralab.tasks.loading import MULTI_FOLDER
from loralab.training.recipe import TrainingRecipe
from loralab.training.run_folder import METRICS_FILE, RunFolder, finished, library_versions

MULTI_KIND = "loralab.multi_adapter_run"


class MultiAdapterRecipe:
    def __init__(self, config: Config, output_dir: str | Path, *, progress: bool = True,
                 overwrite: bool = False, resume: bool = False) -> None:
        if resume and overwrite:
            raise UserError("--resume continues the run in --output and --overwrite replaces "
                            "it: give one of them")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UserError("a config with adapters: trains in one process; run it without "
                            "torchrun / accelerate launch")
        self.config = config
        self.named = config.adapter_configs()
        self.task = get_task(config.model.task, self.named[0][1])
        self.run = RunFolder(Path(output_dir), overwrite=overwrite)
        self.resume = resume
        if resume:
            self.check_same_config()
        self.finished = {name for name, _ in self.named
                         if resume and finished(self.run.path / name)}
        self.recipes = [
            TrainingRecipe(cfg, self.run.path / name, progress=progress,
                           overwrite=name in self.finished or not resume,
                           resume=resume and name not in self.finished, adapter=name)
            for name, cfg in self.named]

    def check_same_config(self) -> None:
        stored = self.run.path / "config.yaml"
        if stored.is_file() and stored.read_text(encoding="utf-8") != dump_config(self.config):
            raise UserError(f"{self.run.path} holds a run of a different config; train into "
                            "another --output, or pass --overwrite to replace it")

    def setup(self) -> None:
        """Every adapter's data, then the base model once with every adapter on it."""
        for recipe in self.recipes:
            recipe.setup_data()
        first = self.recipes[0]
        set_seed(first.cfg.seed)
        builts = self.task.build_adapters(self.named, first.placement)
        for recipe, built in zip(self.recipes, builts):
            recipe.setup_model(built)
        self.model = builts[0].model

    def run_all(self) -> dict[str, Any]:
        self.setup()
        with self.run.writing():
            self.run.start(self.config)
            results = {recipe.adapter: self.train_one(recipe) for recipe in self.recipes}
            self.save_multi_adapter_folder()
            return self.run.write_metrics(self.metrics(results))

    def train_one(self, recipe: TrainingRecipe) -> dict[str, Any]:
        """One adapter's run folder (inside RUN, or its replacement being written)."""
        name = recipe.adapter
        recipe.run = RunFolder(self.run.path / name, overwrite=True)
        if name in self.finished:
            return self.reload_finished(recipe)
        self.model.set_adapter(name)
        set_seed(recipe.cfg.seed)
        return recipe.run_prepared()

    def reload_finished(self, recipe: TrainingRecipe) -> dict[str, Any]:
        """A finished adapter's saved weights back into the shared model; its metrics."""
        folder = recipe.run.path / adapter_folder_name(recipe.config, recipe.built.model_type)
        if not (folder / "adapter_config.json").is_file():
            raise UserError(f"{recipe.run.path} is finished but holds no adapter folder "
                            f"{folder.name}; pass --overwrite to train again")
        self.model.load_adapter(str(folder), adapter_name=recipe.adapter)
        print(f"{recipe.adapter}: finished in an earlier process; its adapter is read from "
              f"{folder}")
        return read_json(recipe.run.path / METRICS_FILE, "run metrics")

    def save_multi_adapter_folder(self) -> Path:
        first = self.recipes[0]
        adapters = [{"name": r.adapter, "config": r.config, "labels": r.labels,
                     "inputs": r.task.input_fields(r.splits["train"])} for r in self.recipes]
        return save_multi_adapter(self.model, first.built.tokenizer, adapters,
                                  first.built.model_type, self.run.path / MULTI_FOLDER)

    def metrics(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {"kind": MULTI_KIND, "name": self.config.run_name,
                "task": self.config.model.task, "model": self.config.model.name,
                "adapters": results, "multi_adapter_folder": MULTI_FOLDER,
                "adapter_folders": {name: f"{name}/{m.get('adapter')}"
                                    for name, m in results.items()},
                "resumed": sorted(self.finished),
                "train_seconds": round(sum(m.get("train_seconds", 0.0)
                                           for m in results.values()), 3),
                "versions": library_versions()}


def train_adapters(config: Config, output_dir: str | Path, *, progress: bool = True,
                   overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    return MultiAdapterRecipe(config, output_dir, progress=progress, overwrite=overwrite,
                              resume=resume).run_all()
