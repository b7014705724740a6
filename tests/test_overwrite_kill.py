"""`train --overwrite` of a finished run, killed (SIGKILL) at several points of a real
subprocess: the finished folder holds one whole run every time (the old one byte for byte, or
the new one finished), never a lock owner file of the killed process; and the next command that
takes the lock removes what the killed one left beside it (`.NAME.new`, `.NAME.old`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from loralab.cli import main

from conftest import sentiment_rows, write_jsonl

SRC = str(Path(__file__).resolve().parents[1] / "src")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, timeout: float = 120
             ) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            return  # finished (or too slow) before the point: killed right after, still valid
        time.sleep(0.02)


def lines(path: Path) -> int:
    try:
        return len(path.read_text(encoding="utf-8").splitlines())
    except OSError:
        return 0


@pytest.fixture
def finished_run(tiny_bert, tmp_path) -> tuple[Path, Path]:
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(64, 0))
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(16, 1))
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"name": str(tiny_bert), "max_length": 32}, "lora": {"r": 4},
        "training": {"epochs": 1, "batch_size": 16, "logging_steps": 1},
        "data": {"train": str(train), "validation": str(dev)}}), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", str(config), "--output", str(run), "--no-progress"]) == 0
    return config, run


def test_a_killed_overwrite_leaves_one_whole_run_and_nothing_behind(finished_run):
    config, run = finished_run
    before = snapshot(run)
    staging, retired = run.parent / f".{run.name}.new", run.parent / f".{run.name}.old"
    points: dict[str, Callable[[], bool]] = {
        "starting": lambda: True,
        "training": lambda: lines(staging / "diagnostics.jsonl") >= 2,
        "finishing": lambda: (staging / "metrics.json").is_file() or snapshot(run) != before,
    }
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "loralab.cli", "train", str(config), "--output", str(run),
            "--overwrite", "--no-progress", "--set", "training.epochs=6"]
    outcomes = []
    for name, reached in points.items():
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            wait_for(reached, process)
            if name == "starting":
                time.sleep(1.0)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
        now = snapshot(run)
        assert ".lock.owner" not in now, f"killed while {name}: a stale owner file in {run}"
        if now == before:
            outcomes.append("old")
        else:  # swapped in: the new run, whole
            metrics = json.loads(now["metrics.json"])
            assert metrics.get("status") != "diverged" and metrics["epochs"] == 6, name
            assert (run / metrics["adapter"] / "adapter_model.safetensors").is_file(), name
            outcomes.append("new")
            before = now
    assert outcomes[:2] == ["old", "old"], outcomes  # killed before the swap: the old run
    # the next command that takes the lock clears what the killed ones left beside the run
    assert main(["train", str(config), "--output", str(run), "--overwrite",
                 "--no-progress"]) == 0
    assert not staging.exists() and not retired.exists()
    assert not (run / ".lock.owner").exists()
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
