"""training.on_collapse (issue 17 item 3): a first epoch that ends at the label prior restarts
once from the initial adapter weights at a third of the learning rate, recorded in
metrics.json; `warn` keeps the warning only, `stop` stops. The tiny random encoder collapses at
learning rate 1e-2 on 160 sentiment rows (every prediction one class after epoch 1) and
learns at 1e-2 / 3."""

import json

import pytest
import torch
from safetensors.torch import load_file

from loralab.config import load_config
from loralab.training.callbacks import TrainingCallback
from loralab.training.checkpoint import load_checkpoint
from loralab.training.collapse import RESTART_FACTOR
from loralab.training.prior_check import collapse_reason, collapsed, overshoot
from loralab.training.recipe import train

from conftest import sentiment_rows, write_jsonl

COLLAPSING_LR = 1e-2
RESTART_LINE = "collapse after epoch 1"
WARNING = "warning: after epoch 1"


@pytest.fixture
def data(tmp_path):
    return (write_jsonl(tmp_path / "train.jsonl", sentiment_rows(160, 0)),
            write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(64, 1)))


def config(model, data, *extra):
    train_file, dev_file = data
    torch.set_num_threads(1)
    return load_config(None, [
        f"model.name={model}", f"data.train={train_file}", f"data.validation={dev_file}",
        "model.max_length=32", "lora.r=4", "training.batch_size=16", "training.epochs=2",
        f"training.learning_rate={COLLAPSING_LR!r}", "training.logging_steps=2", *extra])


def printed(capsys, start):
    out = capsys.readouterr()
    return [line for line in (out.out + out.err).splitlines() if line.startswith(start)]


def diagnostics(run_dir):
    return [json.loads(x) for x in (run_dir / "diagnostics.jsonl").read_text().splitlines()]


def adapter_weights(run_dir):
    return load_file(next(run_dir.glob("lora_*/adapter_model.safetensors")))


@pytest.mark.parametrize(("metrics", "collapsed"), [
    ({"mcc": 0.0, "f1_binary": 0.81, "accuracy": 0.68}, True),      # all the majority class
    ({"mcc": 0.0966, "f1_binary": 0.6, "accuracy": 0.55}, False),   # a slow start: it learns
    ({"mcc": 0.0, "f1_macro": 0.01, "accuracy": 0.1}, True),        # many classes, one answer
    ({"pearson": 0.0, "mse": 2.0}, True),                           # a constant output
    ({"pearson": float("nan"), "mse": 2.0}, True),
    ({"pearson": 0.05, "mse": 1.0}, False),
    ({"entity_f1": 0.0, "token_accuracy": 0.8}, True),              # all O
    ({"entity_f1": 0.05, "token_accuracy": 0.8}, False),
    ({"loss": 2.0}, False),                                         # causal LM: no rule
])
def test_the_collapse_rule(metrics, collapsed):
    assert (collapse_reason(metrics) is not None) == collapsed


def test_only_a_loss_above_the_prior_with_one_answer_is_a_collapse():
    one_class = {"mcc": 0.0, "f1_binary": 0.81}
    assert overshoot(0.6931, [9.0] * 4 + [0.7783] * 4) is not None   # the tail only
    assert overshoot(0.6931, [0.7180] * 8) is None      # +3.6 %: a slow start, it learns
    assert overshoot(0.6531, [0.6576] * 8) is None      # MRPC at lr 1e-3: +0.7 %
    assert overshoot(None, [1.0]) is None and overshoot(0.69, [float("nan")] * 2) is None
    assert collapsed(0.6931, [0.7783] * 8, one_class).endswith("every prediction one class")
    assert collapsed(0.6931, [0.7783] * 8, {"mcc": 0.2, "f1_binary": 0.7}) is None
    assert collapsed(0.6931, [0.7180] * 8, one_class) is None
    assert collapsed(0.6931, [0.7783] * 8, None) is None


def test_a_collapse_restarts_once_and_the_restarted_run_is_saved(tiny_bert, data, tmp_path,
                                                                 capsys):
    run = tmp_path / "run"
    metrics = train(config(tiny_bert, data), run, progress=False)
    lines = printed(capsys, RESTART_LINE)
    new_lr = COLLAPSING_LR / RESTART_FACTOR
    assert len(lines) == 1 and f"training.learning_rate={new_lr:g} (was 0.01" in lines[0]
    reason = ("training loss 0.7783 above the label prior's 0.6931; validation mcc 0: every "
              "prediction one class")
    assert metrics["restarts"] == [{"epoch": 1, "steps": 10, "learning_rate": COLLAPSING_LR,
                                    "new_learning_rate": new_lr, "reason": reason}]
    assert metrics["steps"] == 20 and metrics["epochs"] == 2 and metrics["best"]["mcc"] > 0.1
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["restarts"] == metrics["restarts"]
    lines = diagnostics(run)
    steps = [x["step"] for x in lines]
    assert steps == sorted(steps) and steps[-1] == 30   # 10 collapsed + 20 restarted
    restart = [x for x in lines if "restart" in x]
    assert len(restart) == 1 and restart[0]["restart"] == metrics["restarts"][0]
    assert [x["mcc"] for x in lines if x.get("eval")][0] == 0.0   # the collapsed evaluation

    # the restarted run is the run one trains at lr / 3 from the start, bit for bit
    direct = train(config(tiny_bert, data, f"training.learning_rate={new_lr!r}",
                          "training.on_collapse=warn"), tmp_path / "direct", progress=False)
    assert direct["restarts"] == [] and direct["best"] == metrics["best"]
    assert direct["best_step"] == metrics["best_step"] == 20
    ours, theirs = adapter_weights(run), adapter_weights(tmp_path / "direct")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_second_collapse_does_not_restart_again(tiny_bert, data, tmp_path, capsys):
    metrics = train(config(tiny_bert, data, "training.learning_rate=0.3"), tmp_path / "run",
                    progress=False)
    out = capsys.readouterr()
    text = (out.out + out.err).splitlines()
    assert sum(line.startswith(RESTART_LINE) for line in text) == 1
    warnings = [line for line in text if line.startswith(WARNING)]
    assert len(warnings) == 1 and "e.g. 0.05)" in warnings[0]   # of the run at 0.1
    assert len(metrics["restarts"]) == 1 and metrics["steps"] == 20
    assert metrics["best"]["mcc"] == 0.0 and warnings[0] in metrics["notes"]


def test_warn_keeps_the_warning_only(tiny_bert, data, tmp_path, capsys):
    metrics = train(config(tiny_bert, data, "training.on_collapse=warn"), tmp_path / "run",
                    progress=False)
    out = capsys.readouterr()
    text = (out.out + out.err).splitlines()
    assert not any(line.startswith(RESTART_LINE) for line in text)
    assert sum(line.startswith(WARNING) for line in text) == 1
    assert metrics["restarts"] == [] and metrics["steps"] == 20
    assert [x["step"] for x in diagnostics(tmp_path / "run") if x.get("eval")] == [10, 20]


def test_stop_ends_training_after_the_collapsed_epoch(tiny_bert, data, tmp_path, capsys):
    metrics = train(config(tiny_bert, data, "training.on_collapse=stop"), tmp_path / "run",
                    progress=False)
    stopped = printed(capsys, "training.on_collapse=stop: training stopped after epoch 1")
    assert len(stopped) == 1 and stopped[0] in metrics["notes"]
    assert metrics["steps"] == 10 and metrics["restarts"] == [] and metrics["best_step"] == 10


class Killed(Exception):
    pass


class KillAtEvaluation(TrainingCallback):
    """Raises at the n-th evaluation a callback sees (a crash between two checkpoints)."""

    def __init__(self, at: int) -> None:
        self.at, self.seen = at, 0

    def on_evaluate(self, step, epoch, metrics, value):
        self.seen += 1
        if self.seen == self.at:
            raise Killed
        return False


def test_a_resumed_run_knows_it_restarted(tiny_bert, data, tmp_path):
    cfg = config(tiny_bert, data, "training.epochs=3")
    straight = train(cfg, tmp_path / "straight", progress=False)
    run = tmp_path / "killed"
    with pytest.raises(Killed):   # at the restarted run's 2nd evaluation
        train(cfg, run, progress=False, callbacks=[KillAtEvaluation(2)])
    state = load_checkpoint(run)
    assert state["step"] == 10 and len(state["restarts"]) == 1   # restarted epoch 1's end
    resumed = train(cfg, run, progress=False, resume=True)
    assert resumed["resumed_from_step"] == 10 and resumed["restarts"] == straight["restarts"]
    assert resumed["steps"] == straight["steps"] == 30
    for metric, value in straight["best"].items():
        assert resumed["best"][metric] == pytest.approx(value, abs=1e-6), metric
    assert [x["step"] for x in diagnostics(run)] == [x["step"] for x in diagnostics(
        tmp_path / "straight")]


def test_a_tune_trial_reports_the_restarted_runs_evaluations(tiny_bert, data, tmp_path):
    """The pruner sees the restarted run's epochs 1, 2 (not the collapsed evaluation)."""
    optuna = pytest.importorskip("optuna")
    from loralab.experiments.tune.trial_worker import PruningCallback

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    callback = PruningCallback(trial)
    metrics = train(config(tiny_bert, data), tmp_path / "run", progress=False,
                    callbacks=[callback])
    assert len(metrics["restarts"]) == 1
    evals = [x for x in diagnostics(tmp_path / "run") if x.get("eval")]
    reported = study.trials[0].intermediate_values
    assert reported == {1: evals[1]["f1_binary"], 2: evals[2]["f1_binary"]}
