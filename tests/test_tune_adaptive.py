"""Adaptive defaults (issue 17 item 3, opt-in): training.min_steps, a floor on optimizer steps
that gives a small dataset more whole epochs and says so."""

from __future__ import annotations

import json

import pytest
import yaml

from loralab.cli import main
from loralab.config import TrainingConfig
from loralab.training.adaptive import planned_steps

from conftest import sentiment_rows, write_jsonl


@pytest.mark.parametrize(("settings", "steps", "raised"), [
    ({"epochs": 3}, 12, False),                          # no floor: epochs x steps per epoch
    ({"epochs": 3, "min_steps": 10}, 12, False),         # already above the floor
    ({"epochs": 1, "min_steps": 10}, 12, True),          # 3 whole epochs of 4 steps
    ({"epochs": 0.5, "min_steps": 9}, 12, True),
    ({"epochs": 1, "min_steps": 100, "max_steps": 5}, 5, False),  # max_steps is exact
])
def test_planned_steps(settings, steps, raised):
    total, note = planned_steps(TrainingConfig(**settings), 4)
    assert total == steps and (note is not None) == raised


def test_a_small_dataset_gets_more_epochs_and_the_summary_says_so(tiny_bert, tmp_path,
                                                                  capsys):
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(64, 0))
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(32, 1))
    config = {"model": {"name": str(tiny_bert), "max_length": 32}, "lora": {"r": 4},
              "training": {"epochs": 1, "min_steps": 10, "batch_size": 16, "threads": 1},
              "data": {"train": str(train), "validation": str(dev)}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "cfg.yaml"), "--output", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["epochs"] == 3
    note = "training.min_steps=10: 3 epochs instead of 1 (12 optimizer steps, 4 per epoch)"
    assert note in metrics["notes"]
    done = [line for line in capsys.readouterr().out.splitlines() if line.startswith("done:")]
    assert len(done) == 1 and note in done[0]
