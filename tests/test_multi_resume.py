"""A two-adapter run killed (SIGKILL) while its second adapter trains resumes: the finished
adapter is read back, not retrained; the interrupted one continues from its checkpoint and
ends as an uninterrupted run does. Also --overwrite and the one-writer lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from pipeline_helpers import bilora_raw, write_mbpp, write_yaml

from loralab.cli import main
from loralab.training.checkpoint import checkpoint_path

STEPS = {"epochs": 3, "checkpoint": "steps", "checkpoint_steps": 2}


def kill_in_second_adapter(config_file, run_dir):
    child = subprocess.Popen([sys.executable, "-m", "loralab", "train", str(config_file),
                              "--output", str(run_dir), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    while not checkpoint_path(run_dir / "docstring").is_file():
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint of the second adapter within 240 s"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert (run_dir / "code" / "metrics.json").is_file()
    assert not (run_dir / "docstring" / "metrics.json").exists()
    assert not (run_dir / "metrics.json").exists()


@pytest.mark.integration
def test_a_killed_multi_adapter_run_resumes(tiny_llama, tmp_path, capsys):
    torch.set_num_threads(1)
    config = write_yaml(tmp_path / "bilora.yaml",
                        bilora_raw(tiny_llama, write_mbpp(tmp_path / "mbpp.jsonl"), **STEPS))
    assert main(["train", str(config), "--output", str(tmp_path / "straight"),
                 "--no-progress"]) == 0
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())

    run = tmp_path / "killed"
    kill_in_second_adapter(config, run)
    code_files = {p.name: p.read_bytes() for p in (run / "code").iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["train", str(config), "--output", str(run), "--resume", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "code: finished in an earlier process" in out
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["resumed"] == ["code"]
    assert {p.name: p.read_bytes() for p in (run / "code").iterdir() if p.is_file()} == \
        code_files  # not retrained
    doc = resumed["adapters"]["docstring"]
    assert doc["resumed_from_step"] and doc["resumed_from_step"] > 0
    for name in ("code", "docstring"):
        for metric, value in straight["adapters"][name]["best"].items():
            assert resumed["adapters"][name]["best"][metric] == pytest.approx(value, abs=1e-5)
    assert (run / "adapters" / "docstring" / "adapter_model.safetensors").is_file()

    # a finished run is refused without --overwrite; with it, replaced at the end
    assert main(["train", str(config), "--output", str(run), "--no-progress"]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert main(["train", str(config), "--output", str(run), "--overwrite",
                 "--no-progress"]) == 0
    assert json.loads((run / "metrics.json").read_text())["resumed"] == []
    assert not list(tmp_path.glob(".killed.*"))
