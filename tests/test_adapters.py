"""Model building per architecture, target resolution, and the head surviving save/reload."""

import pytest
import torch

from loralab.config import load_config
from loralab.errors import ConfigError
from loralab.models.placement import Placement
from loralab.tasks import get_task, load_adapter
from loralab.training.recipe import TrainingRecipe

from conftest import build_tiny_encoder

EXPECTED_TARGETS = {
    "bert": {"attention.self.query", "attention.self.value", "attention.output.dense",
             "intermediate.dense", "output.dense"},
    "roberta": {"attention.self.query", "attention.self.value", "attention.output.dense",
                "intermediate.dense", "output.dense"},
    "distilbert": {"attention.q_lin", "attention.v_lin", "attention.out_lin", "ffn.lin1",
                   "ffn.lin2"},
    "modernbert": {"attn.Wqkv", "attn.Wo", "mlp.Wi", "mlp.Wo"},
}


@pytest.fixture(scope="module", params=sorted(EXPECTED_TARGETS))
def tiny_encoder(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    return request.param, build_tiny_encoder(folder, request.param)


def relative(name: str) -> str:
    return name.split(".layer.", 1)[-1].split(".layers.", 1)[-1].split(".", 1)[1]


def built(model_dir, *overrides, task="sequence_classification", labels=("a", "b")):
    config = load_config(None, [f"model.name={model_dir}", f"model.task={task}", *overrides])
    return get_task(task, config).build_model(config, list(labels) if labels else None,
                                              Placement.cpu_fp32())


def test_default_targets_per_architecture(tiny_encoder):
    arch, folder = tiny_encoder
    result = built(folder)
    assert result.model_type == arch
    assert {relative(t) for t in result.target_modules} == EXPECTED_TARGETS[arch]
    assert len(result.target_modules) == 2 * len(EXPECTED_TARGETS[arch])


def test_layers_selector_and_presets(tiny_bert):
    top = built(tiny_bert, "lora.layers=1").target_modules
    assert top and all(".layer.1." in t for t in top)
    first = built(tiny_bert, "lora.layers=[0]").target_modules
    assert first and all(".layer.0." in t for t in first)
    attention = {relative(t) for t in built(tiny_bert, "lora.preset=attention").target_modules}
    assert attention == {"attention.self.query", "attention.self.key", "attention.self.value",
                         "attention.output.dense"}
    mlp = {relative(t) for t in built(tiny_bert, "lora.preset=mlp").target_modules}
    assert mlp == {"intermediate.dense", "output.dense"}
    every = built(tiny_bert, "lora.preset=all-linear").target_modules
    assert len(every) == 12
    clamped = built(tiny_bert, "lora.layers=5")
    assert len(clamped.target_modules) == 10 and "more than the model's 2 layers" in \
        clamped.notes[0]


def test_bad_targets_list_the_model_linear_layers(tiny_bert):
    with pytest.raises(ConfigError) as info:
        built(tiny_bert, "lora.target_modules=[q_lin]")
    message = str(info.value)
    assert "lora.target_modules: 'q_lin' matches no linear layer" in message
    assert "attention.self.query" in message and "intermediate.dense" in message
    with pytest.raises(ConfigError, match="lora.layers: layer 4 does not exist"):
        built(tiny_bert, "lora.layers=[4]")


def test_user_target_suffixes(tiny_bert):
    names = built(tiny_bert, "lora.target_modules=[query, value]").target_modules
    assert {relative(n) for n in names} == {"attention.self.query", "attention.self.value"}


def trained_recipe(model_dir, files, tmp_path, *extra, task="sequence_classification"):
    config = load_config(None, [f"model.name={model_dir}", f"model.task={task}",
                                f"data.train={files[0]}", f"data.validation={files[1]}",
                                "training.epochs=1", "training.learning_rate=1e-2",
                                "lora.r=4", *extra])
    recipe = TrainingRecipe(config, tmp_path / "run", progress=False)
    metrics = recipe.run_all()
    return recipe, tmp_path / "run" / metrics["adapter"]


def logits_of(model, recipe, n=16):
    batch = recipe.task.collator(recipe.built.tokenizer)(
        [{k: v for k, v in f.items() if not k.startswith("_")}
         for f in recipe.features["validation"][:n]])
    batch.pop("labels")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("task", ["sequence_classification", "regression"])
def test_reloaded_adapter_predicts_exactly_like_the_trained_model(tiny_encoder,
                                                                  sentiment_files, tmp_path,
                                                                  task):
    arch, folder = tiny_encoder
    extra = ["data.columns.label=score"] if task == "regression" else []
    recipe, adapter = trained_recipe(folder, sentiment_files, tmp_path, *extra, task=task)
    expected = logits_of(recipe.model, recipe)
    assert expected.abs().sum() > 0
    loaded = load_adapter(adapter)
    torch.testing.assert_close(logits_of(loaded.model, recipe), expected, rtol=1e-5, atol=1e-5)


def test_plain_peft_loads_our_adapter_with_its_head(tiny_bert, sentiment_files, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    recipe, adapter = trained_recipe(tiny_bert, sentiment_files, tmp_path)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    plain = PeftModel.from_pretrained(base, str(adapter))
    torch.testing.assert_close(logits_of(plain, recipe), logits_of(recipe.model, recipe),
                               rtol=1e-5, atol=1e-5)


def test_token_classification_head_reloads(tiny_bert, ner_files, tmp_path):
    recipe, adapter = trained_recipe(tiny_bert, ner_files, tmp_path,
                                     task="token_classification")
    loaded = load_adapter(adapter)
    assert loaded.labels == recipe.labels
    torch.testing.assert_close(logits_of(loaded.model, recipe), logits_of(recipe.model, recipe),
                               rtol=1e-5, atol=1e-5)


def test_plain_peft_adapter_loads_here(tiny_bert, tmp_path):
    """An adapter made with plain PEFT (no loralab files) loads with generic label names."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=2,
                                            target_modules=["query", "value"]))
    torch.nn.init.normal_(model.base_model.model.classifier.modules_to_save.default.weight)
    model.save_pretrained(tmp_path / "plain")
    loaded = load_adapter(tmp_path / "plain")
    assert loaded.labels == ["LABEL_0", "LABEL_1", "LABEL_2"]
    ids = torch.tensor([[2, 10, 11, 3]])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(input_ids=ids).logits,
                                   model(input_ids=ids).logits)


def test_plain_peft_one_output_head_loads_as_regression(tiny_bert, tmp_path):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=1)
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=2,
                                            target_modules=["query", "value"]))
    model.save_pretrained(tmp_path / "plain")
    loaded = load_adapter(tmp_path / "plain")
    assert loaded.task.name == "regression" and loaded.labels is None


def test_models_without_numbered_layers_take_suffix_targets(tmp_path):
    """ALBERT shares one layer group (`albert_layer_groups.0.albert_layers.0`)."""
    import transformers

    from conftest import write_tokenizer

    config = transformers.AlbertConfig(vocab_size=100, embedding_size=16, hidden_size=32,
                                       num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, pad_token_id=0)
    transformers.AlbertModel(config).save_pretrained(tmp_path)
    write_tokenizer(tmp_path)
    names = built(tmp_path, "lora.target_modules=[query, value]").target_modules
    assert names and all(n.endswith((".query", ".value")) for n in names)
    every = built(tmp_path)
    assert "every linear layer" in every.notes[0]
    assert not any("classifier" in n or "pooler" in n for n in every.target_modules)
    with pytest.raises(ConfigError, match="no numbered encoder layers"):
        built(tmp_path, "lora.layers=1")
