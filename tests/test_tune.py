"""`loralab tune`: a real Optuna study (journal file storage) over a tiny random encoder, each
trial a child process; pruning, the results index, best.yaml, and a killed study resuming."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from loralab.cli import main

from conftest import sentiment_rows, write_jsonl

optuna = pytest.importorskip("optuna", reason="Optuna is the optional extra loralab[tune]")

SPACE = {"params": {"training.learning_rate": {"type": "float", "low": 1e-5, "high": 5e-2,
                                               "log": True},
                    "lora.r": {"type": "choice", "values": [2, 4]}}}


def write_study_inputs(tmp_path: Path, model: Path, epochs: int = 2, rows: int = 96,
                       space: dict | None = None) -> tuple[Path, Path]:
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(rows, 0))
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(48, 1))
    config = {"model": {"name": str(model), "max_length": 32}, "lora": {"r": 4},
              "training": {"epochs": epochs, "batch_size": 16, "logging_steps": 2,
                           "threads": 1, "learning_rate": 5e-3},
              "data": {"train": str(train), "validation": str(dev)}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space or SPACE))
    return tmp_path / "cfg.yaml", tmp_path / "space.yaml"


def tune_argv(cfg: Path, space: Path, out: Path, trials: int, *extra: str) -> list[str]:
    return ["tune", str(cfg), "--space", str(space), "--trials", str(trials), "--output",
            str(out), *extra]


def load(out: Path):
    from loralab.experiments.tune.study import storage

    return optuna.load_study(study_name="loralab", storage=storage(out))


def index_rows(out: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(out / "index.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM runs ORDER BY trial").fetchall()
    finally:
        db.close()


def test_a_study_prunes_indexes_its_trials_and_best_yaml_reproduces(tiny_bert, tmp_path,
                                                                    capsys):
    cfg, space = write_study_inputs(tmp_path, tiny_bert)
    out = tmp_path / "study"
    assert main(tune_argv(cfg, space, out, 4, "--seed", "0")) == 0
    printed = capsys.readouterr().out
    study = load(out)
    states = [t.state.name for t in study.trials]
    assert len(states) == 4 and "PRUNED" in states and "COMPLETE" in states, printed
    assert study.direction.name == "MAXIMIZE"  # f1_binary: the registry's direction
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    for trial in pruned:  # stopped after the first of two epochs, yet an ordinary run
        assert sorted(trial.intermediate_values) == [1]
        metrics = json.loads((out / "trials" / trial.user_attrs["folder"] /
                              "metrics.json").read_text())
        assert metrics["epochs"] == 1 and metrics["steps"] == 6
    for trial in study.trials:
        assert trial.params["lora.r"] in (2, 4)
        assert 1e-5 <= trial.params["training.learning_rate"] <= 5e-2

    rows = index_rows(out)
    assert [r["trial"] for r in rows] == [0, 1, 2, 3]
    states_in_index = {r["trial"]: r["trial_state"] for r in rows}
    assert states_in_index == {t.number: t.state.name.lower() for t in study.trials}
    for row, trial in zip(rows, study.trials):
        assert json.loads(row["params"]) == trial.params
        if trial.state.name == "COMPLETE":
            assert row["metric_value"] == pytest.approx(trial.value)

    best = study.best_trial
    table = (out / "study.md").read_text()
    assert f"| {best.number} **best** | complete | {best.value:.4g}" in table
    assert table.count("| pruned |") == len(pruned)
    for name in ("history", "importance", "parallel"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
    assert "plots/history.png" in (out / "report.html").read_text()

    # the index serves the ordinary commands
    assert main(["runs", "list", str(out), "--where", "trial_state=pruned", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == len(pruned)
    study_page = (out / "report.html").read_text()
    assert main(["compare", str(out)]) == 0      # into DIR/compare: the study's page stays
    assert (out / "report.html").read_text() == study_page
    assert "LoRA sweep comparison" in (out / "compare" / "report.html").read_text()
    assert (out / "plots" / "history.png").is_file()
    # best.yaml trains the best trial again: the same metric (CPU, seeded: the same number)
    assert main(["train", str(out / "best.yaml"), "--output", str(tmp_path / "again"),
                 "--no-progress"]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["best"]["f1_binary"] == pytest.approx(best.value, abs=1e-6)


def test_a_rerun_continues_the_study_and_another_config_is_refused(tiny_bert, tmp_path,
                                                                   capsys):
    cfg, space = write_study_inputs(tmp_path, tiny_bert, epochs=1)
    out = tmp_path / "study"
    assert main(tune_argv(cfg, space, out, 2, "--pruner", "none")) == 0
    assert main(tune_argv(cfg, space, out, 3, "--pruner", "none")) == 0  # one more trial
    assert [t.state.name for t in load(out).trials] == ["COMPLETE"] * 3
    assert main(tune_argv(cfg, space, out, 3)) == 0  # done: nothing runs
    assert len(load(out).trials) == 3
    capsys.readouterr()
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text().replace("epochs: 1", "epochs: 2"))
    before = (out / "study.journal").read_bytes()
    assert main(tune_argv(other, space, out, 3)) == 2
    assert "holds a study of another config" in capsys.readouterr().err
    assert (out / "study.journal").read_bytes() == before
    assert main(tune_argv(other, space, out, 1, "--overwrite", "--pruner", "none")) == 0
    assert len(load(out).trials) == 1


def running_trial_checkpointed(out: Path) -> bool:
    return any((p / "checkpoint" / "state.pt").is_file() for p in (out / "trials").glob("*"))


def test_a_killed_study_resumes_where_it_stopped(tiny_bert, tmp_path):
    cfg, space = write_study_inputs(tmp_path, tiny_bert, epochs=4, rows=400)
    out = tmp_path / "study"
    argv = [sys.executable, "-m", "loralab.cli",
            *tune_argv(cfg, space, out, 2, "--pruner", "none")]
    tune = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 180
    while not running_trial_checkpointed(out):
        assert time.time() < deadline and tune.poll() is None, "no checkpoint before the end"
        time.sleep(0.02)
    os.killpg(tune.pid, signal.SIGKILL)  # the tune process and its trial's process
    tune.wait()
    time.sleep(0.5)
    killed = [t for t in load(out).trials if t.state.name == "RUNNING"]
    assert len(killed) == 1
    folder = killed[0].user_attrs["folder"]

    assert main(tune_argv(cfg, space, out, 2, "--pruner", "none")) == 0
    trials = load(out).trials
    assert trials[killed[0].number].state.name == "FAIL"
    assert trials[killed[0].number].user_attrs["killed"] is True
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed[0].number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].params == killed[0].params and retry[0].user_attrs["folder"] == folder
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2  # --trials 2: killed ones
    metrics = json.loads((out / "trials" / folder / "metrics.json").read_text())
    assert metrics["resumed_from_step"] > 0 and metrics["epochs"] == 4
    assert "resuming from the checkpoint" in (out / "trials" / folder / "log.txt").read_text()
    assert "failed (killed)" in (out / "study.md").read_text()


def test_without_optuna_one_line_names_the_extra(tiny_bert, tmp_path, capsys, monkeypatch):
    cfg, space = write_study_inputs(tmp_path, tiny_bert)
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(tune_argv(cfg, space, tmp_path / "out", 2)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["loralab: error: loralab tune needs Optuna: pip install 'loralab[tune]'"]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_same_study_on_a_local_ray_instance(tiny_bert, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is the optional extra loralab[ray]")
    pytest.importorskip("ray.tune.search.optuna")
    cfg, space = write_study_inputs(tmp_path, tiny_bert)
    out = tmp_path / "study"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main(tune_argv(cfg, space, out, 2, "--backend", "ray")) == 0
    finally:
        ray.shutdown()
    study = load(out)  # OptunaSearch asked and told the same journal-stored study
    assert len(study.trials) == 2 and study.best_trial is not None
    rows = index_rows(out)
    assert sorted(r["trial"] for r in rows) == [0, 1]
    for trial in study.trials:
        folder = out / "trials" / trial.user_attrs["folder"]
        assert json.loads((folder / "run.json").read_text())["params"] == trial.params
    best = study.best_trial
    metrics = json.loads((out / "trials" / best.user_attrs["folder"] /
                          "metrics.json").read_text())
    assert metrics["best"]["f1_binary"] == pytest.approx(best.value)
    assert (out / "best.yaml").is_file() and (out / "study.md").is_file()
