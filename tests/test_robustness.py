"""Runs never clobber each other and refused or failed writes leave no trace: --overwrite keeps
the finished run until the new one has finished, one writer per run folder, orphaned grid
workers still index their result, file-system failures are one-line errors; and labels come
from every split, and a run stuck at the label prior says so."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from grid_helpers import statuses, write_grid

from loralab.cli import main
from loralab.experiments.index import INDEX_FILE
from loralab.training.run_lock import is_locked

from conftest import ner_rows, sentiment_rows, write_jsonl

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def config_file(tmp_path: Path, model: Path, train: Path, dev: Path, file: str = "config.yaml",
                **training) -> Path:
    raw = {"name": "sentiment", "model": {"name": str(model), "max_length": 32},
           "lora": {"r": 4, "dropout": 0.0},
           "training": {"epochs": 1, "batch_size": 16, "learning_rate": 5e-3,
                        "logging_steps": 2, **training},
           "data": {"train": str(train), "validation": str(dev)}}
    path = tmp_path / file
    path.write_text(yaml.safe_dump(raw))
    return path


def train_cmd(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "loralab.cli", "train", str(config), "--output", str(out),
            "--no-progress", *extra]


def wait_for(predicate, seconds: float = 180, what: str = "condition") -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".lock")}


def test_overwrite_keeps_the_finished_run_until_the_new_one_finishes(tiny_bert,
                                                                    sentiment_files, tmp_path):
    config = config_file(tmp_path, tiny_bert, *sentiment_files)
    run = tmp_path / "run"
    assert main(["train", str(config), "--output", str(run), "--no-progress"]) == 0
    finished = files_of(run)
    longer = config_file(tmp_path, tiny_bert, *sentiment_files, "longer.yaml", epochs=200)
    child = subprocess.Popen(train_cmd(longer, run, "--overwrite"), env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = tmp_path / ".run.new"
    wait_for(lambda: (staging / "diagnostics.jsonl").is_file(), what="the new run to start")
    assert files_of(run) == finished  # the old run is untouched while the new one trains
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert files_of(run) == finished
    assert main(["train", str(config), "--output", str(run), "--overwrite", "--no-progress",
                 "--set", "training.seed=7"]) == 0
    replaced = json.loads((run / "metrics.json").read_text())
    assert replaced["steps"] > 0 and files_of(run) != finished
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".run")) == []


def test_a_second_training_on_the_same_folder_is_refused(tiny_bert, sentiment_files,
                                                         tmp_path, capsys):
    config = config_file(tmp_path, tiny_bert, *sentiment_files, epochs=200)
    run = tmp_path / "run"
    first = subprocess.Popen(train_cmd(config, run), env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run / "diagnostics.jsonl").is_file(), what="the first run")
        before = files_of(run)
        assert main(["train", str(config), "--output", str(run), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"loralab: error: {run} is being written by process {first.pid}; wait "
                       "for it to finish or choose another --output")
        assert set(files_of(run)) == set(before)  # the second process wrote nothing
    finally:
        first.kill()
        first.wait()


def test_an_orphaned_grid_worker_still_indexes_its_result(tiny_bert, sentiment_files,
                                                          tmp_path):
    path = write_grid(tmp_path, tiny_bert, *sentiment_files, set={"training.epochs": 4},
                      grid={"lora.r": [4]})
    out = tmp_path / "out"
    grid = subprocess.Popen([sys.executable, "-m", "loralab.cli", "grid", str(path),
                             "--output", str(out)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: any(s.get("status") == "running" for s in statuses(out).values()),
             what="the worker to start")
    grid.kill()  # the worker runs in its own session and goes on
    grid.wait()
    wait_for(lambda: all(s.get("status") == "finished" for s in statuses(out).values()),
             what="the orphaned worker to finish")
    run_dir = next((out / "runs").iterdir())
    wait_for(lambda: not is_locked(run_dir), what="the worker to record its result and exit")
    with sqlite3.connect(out / INDEX_FILE) as db:
        rows = db.execute("SELECT status, metric_value FROM runs").fetchall()
    assert len(rows) == 1 and rows[0][0] == "finished" and rows[0][1] is not None


def limited_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_a_full_disk_is_a_one_line_error(tiny_bert, sentiment_files, tmp_path):
    """RLIMIT_FSIZE makes every write past 2 KB fail as a full disk would (EFBIG)."""
    config = config_file(tmp_path, tiny_bert, *sentiment_files)
    result = subprocess.run(train_cmd(config, tmp_path / "run"), env=ENV, text=True,
                            capture_output=True, preexec_fn=limited_file_size, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"loralab: error: cannot write {tmp_path / 'run'}/")
    assert "File too large" in line
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.fixture
def immutable_folder(tmp_path):
    folder = tmp_path / "frozen"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root on ext4 / xfs)")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_unwritable_output_folder_is_refused_before_anything_runs(immutable_folder,
                                                                      tiny_bert,
                                                                      sentiment_files,
                                                                      capsys):
    config = config_file(immutable_folder.parent, tiny_bert, *sentiment_files)
    out = immutable_folder / "run"
    assert main(["train", str(config), "--output", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"loralab: error: --output {out}: cannot write in {immutable_folder}")
    assert list(immutable_folder.iterdir()) == []
    adapter_free = main(["eval", "--model", str(tiny_bert), "--config", str(config),
                         "--output", str(out)])
    assert adapter_free == 2 and "cannot write in" in capsys.readouterr().err


def test_labels_come_from_every_split_before_subsampling(tiny_bert, tmp_path):
    rows = sentiment_rows(60, 0)
    rare = [{"text": "john lives in paris", "label": "neutral"}]
    train = write_jsonl(tmp_path / "train.jsonl", rows + rare)
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(20, 1) + rare)
    config = config_file(tmp_path, tiny_bert, train, dev)
    run = tmp_path / "run"
    assert main(["train", str(config), "--output", str(run), "--no-progress",
                 "--set", "data.max_train_samples=20", "--set", "data.split_seed=3"]) == 0
    mapping = json.loads(next(run.glob("lora_*/label_mapping.json")).read_text())
    assert mapping["labels"] == ["neg", "neutral", "pos"]  # sorted, the same on every run


def test_token_tags_of_the_validation_rows_join_the_label_set(tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "ner.jsonl", ner_rows(40, 0))
    extra = {"tokens": ["call", "555"], "tags": ["O", "B-PHONE"]}
    dev = write_jsonl(tmp_path / "ner_dev.jsonl", ner_rows(10, 1) + [extra])
    config = config_file(tmp_path, tiny_bert, train, dev)
    run = tmp_path / "run"
    assert main(["train", str(config), "--output", str(run), "--no-progress",
                 "--set", "model.task=token_classification"]) == 0
    mapping = json.loads(next(run.glob("lora_*/label_mapping.json")).read_text())
    assert "B-PHONE" in mapping["labels"] and mapping["labels"][0] == "O"


def test_a_run_stuck_at_the_label_prior_prints_one_warning(tiny_bert, tmp_path, capsys):
    rng = random.Random(0)
    noise = [{**r, "label": rng.choice(["neg", "pos"])} for r in sentiment_rows(160, 0)]
    train = write_jsonl(tmp_path / "noise.jsonl", noise)
    config = config_file(tmp_path, tiny_bert, train, train, learning_rate=1e-5)
    assert main(["train", str(config), "--output", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    printed = capsys.readouterr()
    warnings = [line for line in (printed.out + printed.err).splitlines()
                if line.startswith("warning: after epoch 1")]
    assert len(warnings) == 1 and "training.learning_rate" in warnings[0]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert warnings[0] in metrics["notes"]


def test_a_run_that_learns_prints_no_warning(tiny_bert, tmp_path, capsys):
    train = write_jsonl(tmp_path / "many.jsonl", sentiment_rows(1600, 3))
    config = config_file(tmp_path, tiny_bert, train, train, epochs=1)
    assert main(["train", str(config), "--output", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert "warning: after epoch 1" not in printed.out + printed.err
