"""Running grids for real: child processes, skip/resume, failures, locks, Ctrl-C, Ray, index."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from grid_helpers import statuses, write_grid

from loralab.cli import main
from loralab.experiments.index import INDEX_FILE
from loralab.training.run_lock import is_locked


def grid_cmd(path, out, *extra):
    return [sys.executable, "-m", "loralab", "grid", str(path), "--output", str(out), *extra]


def index_rows(out):
    db = sqlite3.connect(out / INDEX_FILE)
    db.row_factory = sqlite3.Row
    return {row["name"]: row for row in db.execute("SELECT * FROM runs")}


def test_grid_runs_indexes_and_skips_finished_runs(tiny_bert, sentiment_files, tmp_path,
                                                   capsys):
    path = write_grid(tmp_path, tiny_bert, *sentiment_files, grid={"lora.r": [2, 4]},
                      baseline=True)
    out = tmp_path / "out"
    assert main(["grid", str(path), "--output", str(out), "--jobs", "2"]) == 0
    rows = index_rows(out)
    assert set(rows) == {"sentiment-bert-r2-a32-lall-s42", "sentiment-bert-r4-a32-lall-s42",
                         "sentiment-bert-baseline-s42"}
    for name, row in rows.items():
        metrics = json.loads((out / "runs" / f"{name}-{row['id']}" / "metrics.json")
                             .read_text())
        assert row["status"] == "finished"
        assert row["metric"] == metrics["metric_for_best"] == "f1_binary"
        assert row["metric_value"] == pytest.approx(metrics["best"]["f1_binary"])
        assert row["trainable_parameters"] == metrics["trainable_parameters"]
    assert rows["sentiment-bert-baseline-s42"]["trainable_parameters"] < \
        rows["sentiment-bert-r2-a32-lall-s42"]["trainable_parameters"]

    # again: nothing runs; one value changed: only its runs run
    before = statuses(out)
    assert main(["grid", str(path), "--output", str(out)]) == 0
    assert statuses(out) == before
    path = write_grid(tmp_path, tiny_bert, *sentiment_files, grid={"lora.r": [2, 8]},
                      baseline=True)
    capsys.readouterr()
    assert main(["grid", str(path), "--output", str(out)]) == 0
    assert "3 runs (2 finished, 1 pending); running 1" in capsys.readouterr().out
    assert len(statuses(out)) == 4
    assert all(s["attempts"] == 1 for s in statuses(out).values())

    # the index can be rebuilt from the folders alone
    (out / INDEX_FILE).unlink()
    assert main(["runs", "reindex", str(out)]) == 0
    assert len(index_rows(out)) == 4
    capsys.readouterr()
    assert main(["runs", "list", str(out), "--where", "lora.r>=4", "--where",
                 "status=finished", "--sort", "accuracy"]) == 0
    listed = capsys.readouterr().out
    assert "r4-a32" in listed and "r8-a32" in listed and "r2-a32" not in listed
    assert "baseline" not in listed


def test_a_failing_run_is_recorded_and_the_grid_goes_on(tiny_bert, sentiment_files, tmp_path,
                                                        capsys):
    path = write_grid(tmp_path, tiny_bert, *sentiment_files,
                      grid={"lora.target_modules": [["query"], ["no_such_layer"]]})
    out = tmp_path / "out"
    assert main(["grid", str(path), "--output", str(out)]) == 1
    by_status = {s["status"]: s for s in statuses(out).values()}
    assert set(by_status) == {"finished", "failed"}
    failed = by_status["failed"]
    assert "no_such_layer" in failed["error"] and "matches no linear layer" in failed["error"]
    assert "no_such_layer" in failed["log_tail"]
    row = index_rows(out)[failed["name"]]
    assert row["status"] == "failed" and "no_such_layer" in row["error"]

    assert main(["grid", str(path), "--output", str(out)]) == 0  # failed runs left alone
    assert "--retry-failed" in capsys.readouterr().out
    assert statuses(out)[f"{failed['name']}-{failed['id']}"]["attempts"] == 1
    assert main(["grid", str(path), "--output", str(out), "--retry-failed"]) == 1
    assert statuses(out)[f"{failed['name']}-{failed['id']}"]["attempts"] == 2
    capsys.readouterr()
    assert main(["runs", "show", failed["id"][:6], "--dir", str(out)]) == 0
    shown = capsys.readouterr().out
    assert '"status": "failed"' in shown and "--- log tail ---" in shown


def wait_for(predicate, seconds=120, what="condition"):
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def only_status(out):
    values = list(statuses(out).values())
    assert len(values) == 1
    return values[0]


def checkpointed(out):
    return any((p / "checkpoint" / "state.pt").is_file() for p in (out / "runs").glob("*"))


def long_grid(tmp_path, tiny_bert, sentiment_files):
    return write_grid(tmp_path, tiny_bert, *sentiment_files, set={"training.epochs": 6},
                      grid={"lora.r": [4]})


def test_a_killed_run_is_recorded_and_resumed(tiny_bert, sentiment_files, tmp_path):
    path, out = long_grid(tmp_path, tiny_bert, sentiment_files), tmp_path / "out"
    grid = subprocess.Popen(grid_cmd(path, out), stdout=subprocess.PIPE, text=True)
    wait_for(lambda: checkpointed(out), what="the first checkpoint")
    os.kill(only_status(out)["pid"], signal.SIGKILL)  # the run's own process
    output, _ = grid.communicate(timeout=60)
    assert grid.returncode == 1
    status = only_status(out)
    assert status["status"] == "killed" and "SIGKILL" in status["error"]
    assert "killed" in output

    assert main(["grid", str(path), "--output", str(out)]) == 0  # restarted, not left
    status = only_status(out)
    assert status["status"] == "finished" and status["attempts"] == 2
    run_dir = next((out / "runs").glob("*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from_step"] > 0
    assert metrics["epochs"] == 6
    assert "resuming from the checkpoint" in (run_dir / "log.txt").read_text()


def test_a_dead_grid_process_leaves_a_run_the_next_invocation_resumes(tiny_bert,
                                                                      sentiment_files,
                                                                      tmp_path):
    path, out = long_grid(tmp_path, tiny_bert, sentiment_files), tmp_path / "out"
    grid = subprocess.Popen(grid_cmd(path, out), stdout=subprocess.DEVNULL)
    wait_for(lambda: checkpointed(out), what="the first checkpoint")
    child = only_status(out)["pid"]
    grid.kill()
    os.kill(child, signal.SIGKILL)  # a node going down takes both
    grid.wait()
    run_dir = next((out / "runs").glob("*"))
    wait_for(lambda: not is_locked(run_dir), 30, "the killed process to release its lock")
    assert only_status(out)["status"] == "running"  # nobody lived to record it
    assert main(["grid", str(path), "--output", str(out)]) == 0
    assert only_status(out)["status"] == "finished"


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tiny_bert, sentiment_files, tmp_path):
    path, out = long_grid(tmp_path, tiny_bert, sentiment_files), tmp_path / "out"
    grid = subprocess.Popen(grid_cmd(path, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: checkpointed(out), what="the first checkpoint")
    grid.send_signal(signal.SIGINT)
    _, err = grid.communicate(timeout=60)
    assert grid.returncode == 130
    assert "resumes the unfinished runs" in err and "Traceback" not in err
    status = only_status(out)
    assert status["status"] == "killed" and "interrupted" in status["error"]
    assert main(["grid", str(path), "--output", str(out)]) == 0
    assert only_status(out)["status"] == "finished"


def test_two_grid_processes_never_run_the_same_run_twice(tiny_bert, sentiment_files,
                                                         tmp_path):
    path = write_grid(tmp_path, tiny_bert, *sentiment_files, grid={"lora.r": [1, 2, 3, 4]})
    out = tmp_path / "out"
    first = subprocess.Popen(grid_cmd(path, out), stdout=subprocess.PIPE, text=True)
    second = subprocess.Popen(grid_cmd(path, out), stdout=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0
    runs = statuses(out)
    assert len(runs) == 4
    assert all(s["status"] == "finished" and s["attempts"] == 1 for s in runs.values())
    done = sum(o.count(" done ") for o in outputs)
    assert done == 4, outputs  # each run trained by exactly one of the two processes


def test_ray_backend_on_a_local_ray_instance(tiny_bert, sentiment_files, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is the optional extra loralab[ray]")
    path = write_grid(tmp_path, tiny_bert, *sentiment_files, grid={"lora.r": [2, 4]},
                      baseline=True, resources={"cpus": 1})
    out = tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main(["grid", str(path), "--output", str(out), "--backend", "ray"]) == 0
    finally:
        ray.shutdown()
    runs = statuses(out)
    assert len(runs) == 3 and all(s["status"] == "finished" for s in runs.values())
    assert all(row["status"] == "finished" for row in index_rows(out).values())
