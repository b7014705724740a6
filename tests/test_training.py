"""End-to-end training on tiny random encoders: each task type, the run folder, reproducibility."""

import json

import pytest

from loralab.config import load_config
from loralab.training.recipe import TrainingRecipe, train

FAST = ["training.learning_rate=5e-3", "lora.dropout=0", "lora.r=4", "lora.alpha=32",
        "training.batch_size=16", "training.logging_steps=5"]


def tiny_config(model_dir, train_file, dev_file, *extra):
    return load_config(None, [f"model.name={model_dir}", f"data.train={train_file}",
                              f"data.validation={dev_file}", *FAST, *extra])


def test_sequence_classification_learns_and_writes_the_run_folder(tiny_bert, sentiment_files,
                                                                  tmp_path):
    config = tiny_config(tiny_bert, *sentiment_files, "training.epochs=10", "name=sentiment")
    metrics = train(config, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert metrics["best"]["accuracy"] >= 0.8
    assert metrics["best"]["accuracy"] > metrics["trivial_baseline"]["accuracy"] + 0.2
    evals = [json.loads(line) for line in (run / "diagnostics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert len(evals) == 10
    assert metrics["best"]["f1_binary"] == pytest.approx(max(e["f1_binary"] for e in evals))
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["best"]["f1_binary"] == pytest.approx(metrics["best"]["f1_binary"])
    for key in ("final", "best", "train_seconds", "train_samples_per_second",
                "trainable_parameters", "total_parameters", "peak_memory_mb", "versions"):
        assert key in saved
    assert set(saved["best"]) >= {"accuracy", "f1_binary", "mcc", "loss"}
    assert 0 < saved["trainable_parameters"] < saved["total_parameters"]
    adapter = run / "lora_sentiment_bert_r4"
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                 "label_mapping.json", "loralab_config.yaml"):
        assert (adapter / name).is_file(), name
    assert json.loads((adapter / "label_mapping.json").read_text())["labels"] == ["neg", "pos"]
    assert (run / "config.yaml").read_text().startswith("name: sentiment")
    assert not list(run.glob(".*tmp"))


def test_diagnostics_have_one_line_per_logging_step(tiny_bert, sentiment_files, tmp_path):
    config = tiny_config(tiny_bert, *sentiment_files, "training.epochs=2")
    metrics = train(config, tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "diagnostics.jsonl").read_text()
             .splitlines()]
    steps = [x for x in lines if not x.get("eval")]
    evals = [x for x in lines if x.get("eval")]
    assert metrics["steps"] == 50  # 400 rows / 16 per batch * 2 epochs
    assert [x["step"] for x in steps] == list(range(5, 55, 5))
    assert [x["epoch"] for x in evals] == [1.0, 2.0]
    for line in steps:
        assert set(line) == {"step", "epoch", "loss", "reg_loss", "learning_rate", "grad_norm"}
        assert line["reg_loss"] == 0.0 and line["loss"] > 0


def test_same_config_and_seed_give_the_same_metrics(tiny_bert, sentiment_files, tmp_path):
    config = tiny_config(tiny_bert, *sentiment_files, "training.epochs=3")
    first = train(config, tmp_path / "a", progress=False)
    second = train(config, tmp_path / "b", progress=False)
    assert first["best"] == second["best"]
    other = train(tiny_config(tiny_bert, *sentiment_files, "training.epochs=3",
                              "training.seed=7"), tmp_path / "c", progress=False)
    assert other["final"]["loss"] != first["final"]["loss"]


def test_regression_learns_a_correlated_score(tiny_bert, sentiment_files, tmp_path):
    config = tiny_config(tiny_bert, *sentiment_files, "model.task=regression",
                         "data.columns.label=score", "training.epochs=15")
    metrics = train(config, tmp_path / "run", progress=False)
    assert metrics["trivial_baseline"]["pearson"] == 0.0
    assert metrics["best"]["pearson"] > 0.4
    assert metrics["metric_for_best"] == "pearson"


def test_token_classification_entity_f1(tiny_bert, ner_files, tmp_path):
    config = tiny_config(tiny_bert, *ner_files, "model.task=token_classification",
                         "training.epochs=15", "name=ner")
    metrics = train(config, tmp_path / "run", progress=False)
    assert metrics["trivial_baseline"]["entity_f1"] == 0.0
    assert metrics["best"]["entity_f1"] > 0.8
    assert set(metrics["best"]["entity_f1_per_type"]) == {"PER", "LOC", "ORG"}
    labels = json.loads((tmp_path / "run" / "lora_ner_bert_r4" / "label_mapping.json")
                        .read_text())["labels"]
    assert labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def test_early_stopping_stops_after_patience(tiny_bert, sentiment_files, tmp_path):
    config = tiny_config(tiny_bert, *sentiment_files, "training.epochs=10",
                         "training.learning_rate=1e-9", "training.head_learning_rate=1e-9",
                         "training.early_stopping_patience=2",
                         "training.metric_for_best=accuracy")
    metrics = train(config, tmp_path / "run", progress=False)
    assert metrics["epochs"] < 10


def test_unknown_metric_for_best_is_a_config_error(tiny_bert, sentiment_files, tmp_path):
    from loralab.errors import ConfigError

    config = tiny_config(tiny_bert, *sentiment_files, "training.epochs=1",
                         "training.metric_for_best=pearson")
    with pytest.raises(ConfigError, match="training.metric_for_best: 'pearson' is not a metric"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "metrics.json").exists()


def unfreeze_run(tiny_bert, sentiment_files, tmp_path, after_epoch):
    config = tiny_config(tiny_bert, *sentiment_files, "training.epochs=2",
                         "training.unfreeze_top_layers=1",
                         f"training.unfreeze_after_epoch={after_epoch}",
                         "training.eval_strategy=no", "training.save_strategy=last")
    recipe = TrainingRecipe(config, tmp_path / f"run{after_epoch}", progress=False)
    recipe.run.start(config)
    recipe.setup_data()
    recipe.setup_model()
    recipe.setup_optimizer()
    return recipe


def layer_copy(recipe):
    return {n: p.detach().clone() for n, p in recipe.model.named_parameters()
            if "layer.1.modules_to_save" in n}


@pytest.mark.parametrize("after_epoch,changes", [(1, True), (2, False)])
def test_unfreezing_top_layers_after_the_given_epoch(tiny_bert, sentiment_files, tmp_path,
                                                     after_epoch, changes):
    import torch

    recipe = unfreeze_run(tiny_bert, sentiment_files, tmp_path, after_epoch)
    assert recipe.built.unfrozen_layers == ["bert.encoder.layer.1"]
    # LoRA is not put on the unfrozen layer: it is trained in full
    assert not any(".layer.1." in t for t in recipe.built.target_modules)
    before = layer_copy(recipe)
    assert before and not any(p.requires_grad for n, p in recipe.model.named_parameters()
                              if "layer.1.modules_to_save" in n)
    recipe.fit()
    after = layer_copy(recipe)
    assert any(not torch.equal(before[n], p) for n, p in after.items()) is changes
    metrics = recipe.finish()
    # the trained layer is saved inside the adapter (PEFT modules_to_save)
    from safetensors import safe_open

    folder = tmp_path / f"run{after_epoch}" / metrics["adapter"]
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as handle:
        assert any("encoder.layer.1." in k for k in handle.keys())
