"""A run whose loss becomes non-finite stops there: one line, exit 3, metrics.json records
"status": "diverged", no adapter is saved, the last checkpoint is kept, and `--resume`
continues from it (a lower learning rate accepted). The divergence is real: one training label
so large that its squared error overflows float32 (a regression head's MSE is inf)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from loralab.cli import main
from loralab.training.divergence import check_grad_norm, check_loss
from loralab.training.prior_check import stuck_at_prior

from conftest import sentiment_rows, write_jsonl


@pytest.fixture
def overflowing_regression(tiny_bert, tmp_path) -> Path:
    """Step 1-2 finite, then a batch holding the label 1e30 (MSE overflows float32)."""
    rows = [{"text": r["text"], "label": r["score"]} for r in sentiment_rows(48, 0)]
    write_jsonl(tmp_path / "clean.jsonl", rows)
    rows[-1]["label"] = 1e30
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": r["text"], "label": r["score"]}
                                                for r in sentiment_rows(8, 1)])
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"name": str(tiny_bert), "task": "regression", "max_length": 32},
        "lora": {"r": 4}, "data": {"train": str(train), "validation": str(dev)},
        "training": {"epochs": 1, "batch_size": 16, "group_by_length": False,
                     "checkpoint": "steps", "checkpoint_steps": 1}}), encoding="utf-8")
    return config


def test_a_non_finite_loss_stops_the_run_with_exit_3(overflowing_regression, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", str(overflowing_regression), "--output", str(out), "--no-progress"]
    assert main(args) == 3
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("loralab: error: training diverged at step ")
    assert "the loss is inf" in err[0] and "training.learning_rate" in err[0]
    assert "label prior" not in err[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["adapter"] is None
    assert metrics["term"] == "loss" and metrics["value"] == "inf"
    assert metrics["checkpoint"] == "checkpoint/state.pt"
    assert (out / metrics["checkpoint"]).is_file()
    assert not list(out.glob("lora_*")), "no adapter is saved as if the run had finished"
    stopped_at = metrics["step"]
    assert stopped_at >= 2

    # --resume with a lower learning rate continues from the last finite checkpoint
    lower = args + ["--resume", "--set", "training.learning_rate=1e-5"]
    assert main(lower) == 3      # the same row overflows again: it is the data
    assert "resuming from the checkpoint at step" in capsys.readouterr().out
    again = json.loads((out / "metrics.json").read_text())
    assert again["status"] == "diverged" and again["step"] == stopped_at
    assert "learning_rate: 1.0e-05" in (out / "config.yaml").read_text()

    # a diverged folder is not a finished run: training again into it needs no --overwrite
    assert main(args + ["--set", f"data.train={tmp_path / 'clean.jsonl'}"]) == 0
    assert json.loads((out / "metrics.json").read_text()).get("status") != "diverged"
    assert list(out.glob("lora_*"))


def test_resume_of_a_diverged_run_refuses_other_changes(overflowing_regression, tmp_path,
                                                        capsys):
    out = tmp_path / "run"
    args = ["train", str(overflowing_regression), "--output", str(out), "--no-progress"]
    assert main(args) == 3
    capsys.readouterr()
    assert main(args + ["--resume", "--set", "lora.r=2"]) == 2
    assert "different config" in capsys.readouterr().err


def test_the_checks_name_the_term_and_ignore_fp16_overflow():
    from loralab.config import Config
    from loralab.errors import TrainingDiverged

    config = Config()
    check_loss(config, 1, 0.5, 0.0, {"ce": 0.5})
    with pytest.raises(TrainingDiverged, match=r"step 7: the loss term 'kd' is nan") as info:
        check_loss(config, 7, 0.5, 0.0, {"kd": float("nan")})
    assert info.value.exit_code == 3 and info.value.step == 7
    with pytest.raises(TrainingDiverged, match="gradient norm is inf"):
        check_grad_norm(config, 3, float("inf"), None)
    check_grad_norm(config, 3, float("inf"), object())  # a loss scaler skips that step
    check_grad_norm(config, 3, None, None)              # clipping off: nothing to check


def test_the_label_prior_warning_never_fires_on_a_non_finite_loss():
    assert stuck_at_prior(0.69, [0.7, float("nan"), float("nan")], 1e-3) is None
    assert stuck_at_prior(0.69, [float("inf")] * 4, 1e-3) is None
    assert stuck_at_prior(0.69, [0.7] * 4, 1e-3) is not None
