"""`loralab export` for encoder tasks on a tiny random BERT: merged and ONNX round trips per task
type within tolerance, rsLoRA and DoRA merges, what the merge must leave alone or carry, the peft
format's folder and model card, 16-bit exports, the failing fidelity check, and `loralab
predict` on export folders."""

import json

import pytest
import torch
from export_helpers import encoder_adapters, make_adapter, manifest, reference_logits
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from loralab.cli import main
from loralab.tasks import load_adapter

TEXTS = ["the movie was good", "a very bad and boring film it was", "i loved it",
         "john smith lives in paris and works at acme corp"]
AUTO = {"sequence_classification": AutoModelForSequenceClassification,
        "regression": AutoModelForSequenceClassification,
        "token_classification": AutoModelForTokenClassification}


@pytest.fixture(scope="module")
def adapters(tiny_bert, tmp_path_factory):
    return encoder_adapters(tmp_path_factory.mktemp("export-adapters"), tiny_bert, tuple(AUTO))


@pytest.fixture(scope="module")
def data(adapters):
    folder = adapters["sequence_classification"].parent
    return {"sentiment": (folder / "train.jsonl", folder / "dev.jsonl")}


def batch_of(tokenizer, texts=TEXTS):
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


def export(adapter, out, fmt, *extra):
    return main(["export", str(adapter), "--format", fmt, "--output", str(out), *map(str, extra)])


@pytest.mark.parametrize("fmt", ["merged", "onnx"])
@pytest.mark.parametrize("task", sorted(AUTO))
def test_round_trip_within_tolerance(adapters, tmp_path, task, fmt, capsys):
    adapter, out = adapters[task], tmp_path / "out"
    assert export(adapter, out, fmt) == 0
    info = manifest(out)
    assert info["format"] == fmt and info["task"] == task and info["fidelity"]["passed"]
    figures = info["fidelity"]["figures"]
    assert figures["max_abs_diff"] < 1e-4
    assert "validation data" in info["fidelity_inputs"]
    assert info["source"]["sha256"] and info["versions"]["peft"]
    if task == "regression":
        assert figures["max_value_diff"] < 1e-4
    else:
        assert figures["label_agreement"] == 100.0
    if task == "token_classification":
        assert figures["entity_agreement"] == 100.0
    loaded = load_adapter(adapter, device="cpu")
    batch = batch_of(loaded.tokenizer, TEXTS[1:] if fmt == "onnx" else TEXTS)
    expected = reference_logits(adapter, batch)
    with torch.no_grad(), loaded.model.disable_adapter():
        without = loaded.model(**batch).logits
    assert (expected - without).abs().max() > 1e-2  # the adapter matters: a lost merge fails
    if fmt == "merged":
        model = AUTO[task].from_pretrained(out).eval()
        with torch.no_grad():
            got = model(**batch).logits
        if task != "regression":
            assert model.config.id2label == dict(enumerate(loaded.labels))
            assert model.config.label2id == {n: i for i, n in enumerate(loaded.labels)}
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out / "model.onnx"))
        assert [i.shape for i in session.get_inputs()][0] == ["batch", "sequence"]
        # another batch size and length than the traced one: the axes are dynamic
        got = torch.from_numpy(session.run(["logits"], {
            i.name: batch[i.name].numpy() for i in session.get_inputs()})[0])
        assert info["onnx"]["kv_cache"] is False
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert (out / "tokenizer.json").is_file() and (out / "label_mapping.json").is_file()
    assert "exported" in capsys.readouterr().out


@pytest.mark.parametrize("variant", ["lora.use_rslora=true", "lora.use_dora=true"])
def test_rslora_and_dora_merges_match_peft(tiny_bert, data, tmp_path, variant):
    adapter = make_adapter(tmp_path / "ad", tiny_bert, "sequence_classification",
                           *data["sentiment"], variant, "lora.r=4", "lora.alpha=8")
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["use_rslora" if "rslora" in variant else "use_dora"] is True
    assert export(adapter, tmp_path / "out", "merged") == 0
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    loaded = load_adapter(adapter, device="cpu")
    batch = batch_of(loaded.tokenizer)
    with torch.no_grad():
        got = merged(**batch).logits
    expected = reference_logits(adapter, batch)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    # the plain-LoRA arithmetic (scale alpha/r, no magnitude) gives another model: the check
    # above would catch a merge that ignored rsLoRA's alpha/sqrt(r) or DoRA's normalisation
    naive = naive_merge(loaded.model, alpha_over_r=8 / 4)
    with torch.no_grad():
        wrong = naive(**batch).logits
    assert (wrong - expected).abs().max() > 1e-3


def naive_merge(peft_model, alpha_over_r):
    """W + (alpha / r) * B @ A for every LoRA layer: what a re-derived plain merge would do."""
    import copy

    model = copy.deepcopy(peft_model)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "lora_A") and "default" in module.lora_A:
                delta = module.lora_B["default"].weight @ module.lora_A["default"].weight
                module.base_layer.weight += alpha_over_r * delta
                module.lora_B["default"].weight.zero_()
                module.lora_variant.pop("default", None)  # DoRA off: plain LoRA arithmetic
    return model


def test_merge_leaves_untouched_layers_and_carries_the_trained_head(adapters, tiny_bert,
                                                                    tmp_path):
    adapter = adapters["sequence_classification"]
    assert export(adapter, tmp_path / "out", "merged") == 0
    merged = load_file(tmp_path / "out" / "model.safetensors")
    base = load_file(tiny_bert / "model.safetensors")
    saved = load_file(adapter / "adapter_model.safetensors")
    key = "bert.encoder.layer.0.attention.self.key.weight"         # not a LoRA target
    assert torch.equal(merged[key], base[key.removeprefix("bert.")])
    query = "bert.encoder.layer.0.attention.self.query.weight"      # a LoRA target
    assert not torch.allclose(merged[query], base[query.removeprefix("bert.")])
    head = next(k for k in saved if k.endswith("classifier.weight"))
    assert torch.equal(merged["classifier.weight"], saved[head])
    checks = manifest(tmp_path / "out")["checks"]
    assert checks["untouched_parameters"] > 0 and checks["modules_to_save_parameters"] >= 2
    assert checks["vocab_size"] == merged["bert.embeddings.word_embeddings.weight"].shape[0]


def test_peft_format_is_a_clean_folder_with_a_model_card(adapters, tmp_path):
    run = tmp_path / "run"
    adapter = run / "lora_x_bert_r4"
    import shutil

    shutil.copytree(adapters["sequence_classification"], adapter)
    (adapter / "stray.tmp").write_text("leftover")
    (run / "metrics.json").write_text(json.dumps(
        {"adapter": adapter.name, "best": {"accuracy": 0.875, "f1_binary": 0.8}, "test": None}))
    assert export(adapter, tmp_path / "out", "peft") == 0
    out = tmp_path / "out"
    assert not (out / "stray.tmp").exists()
    assert (out / "adapter_model.safetensors").read_bytes() == \
        (adapter / "adapter_model.safetensors").read_bytes()
    card = (out / "README.md").read_text()
    assert "neg, pos" in card and "sequence_classification" in card
    assert "| validation | accuracy | 0.8750 |" in card
    assert f"loralab export {adapter} --format peft --output {out}" in card
    info = manifest(out)
    assert info["fidelity"] is None and info["checks"]["weights_sha256_equal"]
    batch = batch_of(load_adapter(out).tokenizer)
    torch.testing.assert_close(reference_logits(out, batch), reference_logits(adapter, batch))


def test_16_bit_export_warns_and_uses_its_looser_tolerance(adapters, tmp_path, capsys):
    assert export(adapters["sequence_classification"], tmp_path / "out", "merged",
                  "--dtype", "fp16") == 0
    assert "merging for fp16" in capsys.readouterr().err
    info = manifest(tmp_path / "out")
    assert info["dtype"] == "fp16" and info["fidelity"]["tolerance"]["atol"] == 5e-2
    assert 0 < info["fidelity"]["figures"]["max_abs_diff"] < 5e-2
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out", dtype="auto")
    assert model.dtype == torch.float16


def test_drift_beyond_tolerance_exits_1_and_writes_nothing_unless_forced(adapters, tmp_path,
                                                                         capsys):
    adapter, out = adapters["sequence_classification"], tmp_path / "out"
    assert export(adapter, out, "merged", "--dtype", "fp16", "--atol", "1e-9") == 1
    err = capsys.readouterr().err
    assert "failed its fidelity check and was not written" in err and "max |Δ logit|" in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    assert export(adapter, out, "merged", "--dtype", "fp16", "--atol", "1e-9", "--force") == 0
    assert "written with --force" in capsys.readouterr().err
    info = manifest(out)
    assert info["forced"] is True and info["fidelity"]["passed"] is False
    assert info["fidelity"]["failures"]


def test_overwrite_replaces_a_finished_export(adapters, tmp_path):
    adapter, out = adapters["regression"], tmp_path / "out"
    assert export(adapter, out, "peft") == 0
    assert export(adapter, out, "merged", "--overwrite") == 0
    assert manifest(out)["format"] == "merged" and not (out / "adapter_config.json").exists()
    assert not list(tmp_path.glob(".*"))


def test_inputs_file_replaces_the_validation_data(adapters, tmp_path):
    inputs = tmp_path / "probe.txt"
    inputs.write_text("the film was great\n\nawful plot\n")
    assert export(adapters["sequence_classification"], tmp_path / "out", "merged",
                  "--inputs", inputs) == 0
    assert manifest(tmp_path / "out")["fidelity_inputs"] == f"inputs file {inputs} (2 examples)"


def test_plain_peft_adapter_is_checked_on_generated_text(tiny_bert, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=2,
                                            target_modules=["query", "value"]))
    model.save_pretrained(tmp_path / "plain")
    assert export(tmp_path / "plain", tmp_path / "out", "onnx") == 0
    info = manifest(tmp_path / "out")
    assert info["fidelity_inputs"].startswith("generated text")
    assert info["labels"] == ["LABEL_0", "LABEL_1", "LABEL_2"]


@pytest.mark.parametrize("task", ["sequence_classification", "token_classification"])
def test_predict_on_export_folders_gives_the_adapters_labels(adapters, tmp_path, capsys, task):
    adapter = adapters[task]
    texts = [arg for t in TEXTS for arg in ("--text", t)]
    assert main(["predict", str(adapter), *texts]) == 0
    expected = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for fmt in ("merged", "onnx"):
        out = tmp_path / fmt
        assert export(adapter, out, fmt) == 0
        capsys.readouterr()
        assert main(["predict", str(out), *texts]) == 0
        got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(got) == len(expected) == len(TEXTS)
        for mine, theirs in zip(got, expected):
            assert mine.keys() == theirs.keys()
            if task == "token_classification":
                assert mine["tags"] == theirs["tags"]
                assert [e["entity"] for e in mine["entities"]] == \
                    [e["entity"] for e in theirs["entities"]]
            else:
                assert mine["label"] == theirs["label"]
                assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=1e-4)
