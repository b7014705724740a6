"""Atomic results: a failed or killed write never leaves a file that looks finished."""

import os
import signal
import subprocess
import sys
import time

import pytest

from loralab.atomic import atomic_directory, atomic_write_json


def test_atomic_write_replaces_whole_file_or_nothing(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"a": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_json(target, {"a": 2})
    monkeypatch.undo()
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_directory_keeps_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "adapter"
    with atomic_directory(target) as tmp:
        (tmp / "weights").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("killed")
    assert (target / "weights").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_killed_training_leaves_no_finished_looking_result(tiny_bert, sentiment_files,
                                                          tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "loralab", "train", "--no-progress", "--output", str(run),
            "--set", f"model.name={tiny_bert}", "--set", f"data.train={sentiment_files[0]}",
            "--set", f"data.validation={sentiment_files[1]}", "--set", "training.epochs=500",
            "--set", "training.logging_steps=1"]
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    diagnostics = run / "diagnostics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (diagnostics.exists()
                                          and diagnostics.read_text().count("\n") >= 15):
        time.sleep(0.2)
    assert child.poll() is None, "training ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert (run / "config.yaml").is_file()
    assert not (run / "metrics.json").exists()
    assert not list(run.glob("lora_*"))
