"""Experiment tracking (training.report_to): a real local MLflow SQLite store, TensorBoard
event files read with tensorboard's EventAccumulator, W&B offline runs; the numbers equal
diagnostics.jsonl. A study's trials are children of the study's MLflow parent run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from loralab.cli import main

from conftest import sentiment_rows, write_jsonl

mlflow = pytest.importorskip("mlflow", reason="MLflow is the optional extra loralab[tracking]")


def write_config(tmp_path: Path, model: Path, **training) -> Path:
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(64, 0))
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(32, 1))
    config = {"name": "tracked", "model": {"name": str(model), "max_length": 32},
              "lora": {"r": 4},
              "training": {"epochs": 2, "batch_size": 16, "logging_steps": 1, "threads": 1,
                           "learning_rate": 5e-3, "on_collapse": "warn",   # no restarts here
                           **training},
              "data": {"train": str(train), "validation": str(dev)}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def diagnostics(run: Path) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(x) for x in (run / "diagnostics.jsonl").read_text().splitlines()]
    return [x for x in lines if not x.get("eval")], [x for x in lines if x.get("eval")]


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def history(mlflow_client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in mlflow_client.get_metric_history(run_id, key))


def test_mlflow_and_tensorboard_record_what_diagnostics_jsonl_holds(tiny_bert, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path, tiny_bert, report_to=["mlflow", "tensorboard"],
                       tracking_uri=uri, tracking_project="demo")
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--output", str(run), "--no-progress"]) == 0
    train_lines, eval_lines = diagnostics(run)
    assert len(train_lines) == 8 and len(eval_lines) == 2

    store = client(uri)
    experiment = store.get_experiment_by_name("demo")
    (found,) = store.search_runs([experiment.experiment_id])
    run_id = found.info.run_id
    assert found.info.status == "FINISHED" and found.info.run_name == "run"
    for key in ("loss", "learning_rate", "grad_norm"):
        assert history(store, run_id, f"train/{key}") == [
            (x["step"], pytest.approx(x[key], rel=1e-12)) for x in train_lines]
    for key in ("accuracy", "f1_binary", "mcc", "loss"):
        assert history(store, run_id, f"eval/{key}") == [
            (x["step"], pytest.approx(x[key], rel=1e-12)) for x in eval_lines]
    params = found.data.params
    assert params["lora.r"] == "4" and params["training.learning_rate"] == "0.005"
    assert params["model.name"] == str(tiny_bert)
    metrics = json.loads((run / "metrics.json").read_text())
    assert found.data.metrics["final/f1_binary"] == pytest.approx(metrics["best"]["f1_binary"])
    artifacts = {a.path for a in store.list_artifacts(run_id)}
    assert {"metrics.json", "adapter"} <= artifacts
    adapter_files = {Path(a.path).name for a in store.list_artifacts(run_id, "adapter")}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= adapter_files

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    for key in ("loss", "learning_rate", "grad_norm"):
        scalars = events.Scalars(f"train/{key}")
        assert [s.step for s in scalars] == [x["step"] for x in train_lines]
        assert [s.value for s in scalars] == pytest.approx([x[key] for x in train_lines],
                                                           rel=1e-6)  # float32 in events
    assert [s.value for s in events.Scalars("eval/accuracy")] == pytest.approx(
        [x["accuracy"] for x in eval_lines], rel=1e-6)


def test_wandb_writes_an_offline_run(tiny_bert, tmp_path):
    pytest.importorskip("wandb", reason="W&B is the optional extra loralab[wandb]")
    cfg = write_config(tmp_path, tiny_bert, report_to="wandb", tracking_project="demo")
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--output", str(run), "--no-progress"]) == 0
    (offline,) = (run / "wandb").glob("offline-run-*")
    (records,) = offline.glob("*.wandb")
    assert records.stat().st_size > 0


def test_a_studys_trials_are_children_of_its_parent_run(tiny_bert, tmp_path):
    pytest.importorskip("optuna")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path, tiny_bert, report_to=["mlflow"], tracking_uri=uri, epochs=1)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"params": {"lora.r": {"type": "choice",
                                                           "values": [2, 4]}}}))
    out = tmp_path / "my-study"
    assert main(["tune", str(cfg), "--space", str(space), "--trials", "2", "--output",
                 str(out), "--pruner", "none"]) == 0
    store = client(uri)
    experiment = store.get_experiment_by_name("my-study")
    runs = store.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("loralab.group") == "my-study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")
                == parents[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(
        p.name for p in (out / "trials").iterdir())
    assert parents[0].data.metrics["trials"] == 2


def test_an_unwritable_tracking_uri_is_refused_before_training(tiny_bert, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    cfg = write_config(tmp_path, tiny_bert, report_to=["mlflow"],
                       tracking_uri=f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    assert main(["train", str(cfg), "--output", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training.tracking_uri" in err[0] and "a-file" in err[0]
    assert not (tmp_path / "run").exists()


def test_a_missing_tracker_package_is_one_line_naming_the_extra(tiny_bert, tmp_path, capsys,
                                                                monkeypatch):
    cfg = write_config(tmp_path, tiny_bert, report_to=["mlflow"])
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert main(["train", str(cfg), "--output", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["loralab: error: training.report_to: mlflow needs the mlflow package: pip "
                   "install 'loralab[tracking]'"]
    assert not (tmp_path / "run").exists()


def test_trackio_records_the_same_numbers_in_its_local_project(tiny_bert, tmp_path,
                                                              monkeypatch):
    import sqlite3

    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))  # read when trackio loads
    pytest.importorskip("trackio", reason="Trackio is the optional extra loralab[trackio]")
    from trackio.utils import TRACKIO_DIR

    project = f"demo-{tmp_path.name}"
    cfg = write_config(tmp_path, tiny_bert, report_to=["trackio"], tracking_project=project)
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--output", str(run), "--no-progress"]) == 0
    train_lines, _ = diagnostics(run)
    db = sqlite3.connect(Path(TRACKIO_DIR) / f"{project}.db")
    try:
        rows = db.execute("SELECT step, metrics FROM metrics WHERE run_name = 'run' "
                          "ORDER BY id").fetchall()
    finally:
        db.close()
    logged = [(step, json.loads(text)) for step, text in rows]
    losses = [(step, m["train/loss"]) for step, m in logged if "train/loss" in m]
    assert losses == [(x["step"], pytest.approx(x["loss"], rel=1e-12)) for x in train_lines]


def test_a_grids_runs_are_children_of_its_parent_run(tiny_bert, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path, tiny_bert, report_to=["mlflow"], tracking_uri=uri, epochs=1)
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"base": str(cfg), "grid": {"lora.r": [2, 4]}}))
    out = tmp_path / "sweep"
    assert main(["grid", str(grid), "--output", str(out)]) == 0
    store = client(uri)
    runs = store.search_runs([store.get_experiment_by_name("sweep").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("loralab.group") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(
        p.name for p in (out / "runs").iterdir())
    assert parent.data.metrics == {"runs": 2.0, "failed": 0.0}


def test_a_run_that_fails_ends_failed_in_mlflow_not_running(tiny_bert, tmp_path):
    from loralab.config import load_config
    from loralab.training.callbacks import TrainingCallback
    from loralab.training.recipe import train

    class FailsAtTheFirstEvaluation(TrainingCallback):
        def on_evaluate(self, step, epoch, metrics, value):
            raise RuntimeError("the disk is full")

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path, tiny_bert, report_to=["mlflow", "tensorboard"],
                       tracking_uri=uri, tracking_project="failing")
    with pytest.raises(RuntimeError, match="the disk is full"):
        train(load_config(cfg), tmp_path / "run", progress=False,
              callbacks=[FailsAtTheFirstEvaluation()])
    store = client(uri)
    (found,) = store.search_runs([store.get_experiment_by_name("failing").experiment_id])
    assert found.info.status == "FAILED" and found.info.end_time is not None
    assert history(store, found.info.run_id, "train/loss")       # what it logged is kept
