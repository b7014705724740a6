"""Multi-process training with torchrun on CPU (gloo): accelerate shards the data, evaluation
is gathered without duplicates, and one run folder is written by the main process.

Tolerance: with the same global batch (2 processes x 8 = 1 process x 16), no dropout and no
length grouping, each optimizer step sees the same 16 rows, so the metrics agree up to the
order of floating-point sums in DDP's gradient all-reduce: loss within 1e-5, the
classification metrics exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from loralab.config import dump_config, load_config

from conftest import write_jsonl

pytestmark = pytest.mark.integration

TRAIN_ROWS, DEV_ROWS = 96, 41  # an odd evaluation set: the last shard is padded by accelerate


def train_command(config_file, output, processes: int, *extra: str) -> list[str]:
    cli = ["-m", "loralab.cli", "train", str(config_file), "--output", str(output),
           "--no-progress", *extra]
    if processes == 1:
        return [sys.executable, *cli]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", *cli]


def run(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture
def encoder_config(tiny_bert, tmp_path):
    from conftest import sentiment_rows

    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(TRAIN_ROWS, 0))
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(DEV_ROWS, 1))
    config = load_config(None, [
        f"model.name={tiny_bert}", "model.max_length=32", f"data.train={train}",
        f"data.validation={dev}", "lora.r=4", "lora.alpha=8", "lora.dropout=0",
        "training.epochs=2", "training.batch_size=8", "training.learning_rate=5e-3",
        "training.group_by_length=false", "training.logging_steps=2"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    return path


def test_two_processes_shard_the_data_and_match_one_process(encoder_config, tmp_path):
    run(train_command(encoder_config, tmp_path / "ddp", 2))
    run(train_command(encoder_config, tmp_path / "one", 1, "--set", "training.batch_size=16"))
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    # each process saw half of every epoch's rows
    assert ddp["distributed"] == {"processes": 2,
                                  "train_rows_per_process": [TRAIN_ROWS, TRAIN_ROWS]}
    assert one["distributed"] is None
    assert ddp["steps"] == one["steps"] == 2 * TRAIN_ROWS // 16
    for key in ("best", "final"):
        assert ddp[key]["loss"] == pytest.approx(one[key]["loss"], abs=1e-5)
        for metric in ("accuracy", "f1_binary", "mcc"):
            assert ddp[key][metric] == one[key][metric]
    # one writer: one adapter, one log line per logging step and evaluation
    folder = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert folder == sorted(p.name for p in (tmp_path / "one").iterdir())
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "diagnostics.jsonl").read_text()
             .splitlines()]
    assert [x["step"] for x in lines if x.get("eval")] == [6, 12]
    assert len(lines) == len((tmp_path / "one" / "diagnostics.jsonl").read_text().splitlines())


def test_distillation_from_the_base_model_runs_through_ddp(tiny_llama, intent_lm_files,
                                                           tmp_path):
    """The KD teacher is the base model with the adapter disabled: `disable_adapter` is
    reached through the unwrapped model, not the DDP wrapper."""
    train, dev = intent_lm_files
    config = load_config(None, [
        f"model.name={tiny_llama}", "model.task=causal_lm", "model.max_length=64",
        f"data.train={train}", f"data.validation={dev}",
        "data.prompt_template='message: {message} answer:'", "data.response_template='{output}'",
        "lora.r=4", "training.epochs=1", "training.batch_size=8", "training.logging_steps=1",
        "training.loss=[{type: ce}, {type: kd, weight: 0.5}]"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    run(train_command(path, tmp_path / "ddp", 2))
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["distributed"]["processes"] == 2 and metrics["adapter"]
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "diagnostics.jsonl").read_text()
             .splitlines() if '"eval"' not in x]
    assert lines and all("loss_kd" in line and "loss_ce" in line for line in lines)
