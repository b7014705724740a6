"""Checkpoints and resume (a really killed training process), and the no-LoRA baseline run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from loralab.config import dump_config, load_config
from loralab.training.checkpoint import checkpoint_path, load_checkpoint
from loralab.training.recipe import TrainingRecipe, train

FAST = ["training.learning_rate=5e-3", "lora.r=4", "lora.alpha=32", "training.batch_size=16",
        "training.logging_steps=5", "training.epochs=3"]


def tiny_config(model_dir, train_file, dev_file, *extra):
    return load_config(None, [f"model.name={model_dir}", f"data.train={train_file}",
                              f"data.validation={dev_file}", *FAST, *extra])


def kill_after_first_checkpoint(config, run_dir, tmp_path):
    """Start `loralab train` in a child process and SIGKILL it once a checkpoint exists."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text(dump_config(config))
    child = subprocess.Popen([sys.executable, "-m", "loralab", "train", str(config_file),
                              "--output", str(run_dir), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not checkpoint_path(run_dir).is_file():
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (run_dir / "metrics.json").exists()


def eval_lines(run_dir):
    lines = [json.loads(x) for x in (run_dir / "diagnostics.jsonl").read_text().splitlines()]
    return [x for x in lines if x.get("eval")]


@pytest.mark.parametrize("mode", ["epoch", "steps"])
def test_a_killed_run_resumes_to_the_same_result(tiny_bert, sentiment_files, tmp_path, mode):
    torch.set_num_threads(1)
    extra = ["training.checkpoint=steps", "training.checkpoint_steps=7"] if mode == "steps" \
        else []
    config = tiny_config(tiny_bert, *sentiment_files, *extra)
    straight = train(config, tmp_path / "straight", progress=False)
    assert not checkpoint_path(tmp_path / "straight").exists()  # removed when finished

    run_dir = tmp_path / "killed"
    kill_after_first_checkpoint(config, run_dir, tmp_path)
    state = load_checkpoint(run_dir)
    assert state["step"] > 0
    assert (state["micro"] > 0) == (mode == "steps")  # steps: resumed inside an epoch

    resumed = train(config, run_dir, progress=False, resume=True)
    assert resumed["resumed_from_step"] >= state["step"]
    assert resumed["steps"] == straight["steps"]
    for key in ("best", "final"):
        for metric, value in straight[key].items():
            assert resumed[key][metric] == pytest.approx(value, abs=1e-6), (key, metric)
    assert [x["step"] for x in eval_lines(run_dir)] == \
        [x["step"] for x in eval_lines(tmp_path / "straight")]
    assert not checkpoint_path(run_dir).exists()


def test_resume_refuses_a_checkpoint_of_another_config(tiny_bert, sentiment_files, tmp_path):
    config = tiny_config(tiny_bert, *sentiment_files)
    kill_after_first_checkpoint(config, tmp_path / "run", tmp_path)
    other = tiny_config(tiny_bert, *sentiment_files, "lora.r=8")
    with pytest.raises(Exception, match="different config"):
        TrainingRecipe(other, tmp_path / "run", resume=True)


def test_baseline_trains_only_the_head(tiny_bert, sentiment_files, tmp_path):
    config = tiny_config(tiny_bert, *sentiment_files, "lora.enabled=false",
                         "training.epochs=2")
    recipe = TrainingRecipe(config, tmp_path / "base", progress=False)
    metrics = recipe.run_all()
    model = recipe.model
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith(("classifier.", "bert.pooler.")) for n in trained)
    assert metrics["baseline"] is True and metrics["adapter"] is None
    assert metrics["adapted_layers"] == 0
    assert metrics["trainable_parameters"] == sum(
        p.numel() for n, p in model.named_parameters() if n in trained)
    # the encoder really stayed frozen: its weights equal the pretrained ones
    from transformers import AutoModel
    pretrained = AutoModel.from_pretrained(tiny_bert).state_dict()
    encoder = {k.removeprefix("bert."): v for k, v in model.state_dict().items()
               if k.startswith("bert.encoder.")}
    assert all(torch.equal(v, pretrained[k]) for k, v in encoder.items())
    assert not any(p.name.startswith("lora_") for p in (tmp_path / "base").iterdir())
    assert metrics["best"]["accuracy"] >= metrics["trivial_baseline"]["accuracy"]
