"""The causal_lm task on a tiny random Llama: label masking, templates, truncation, packing,
loss terms, training, QLoRA refusal, adapter reload and base-vs-adapter evaluation."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from loralab.config import load_config
from loralab.errors import ConfigError, DataError
from loralab.tasks import get_task
from loralab.tasks.causal import CausalCollator, first_k_mask, kd_loss
from loralab.tasks.sft_format import IGNORE, PromptFormat, encode_sft, fill, pack

TEMPLATE = "message: {message}\nJSON: "
LM = ["model.task=causal_lm", f"data.prompt_template={json.dumps(TEMPLATE)}",
      "data.response_template='{output}'", "model.max_length=160", "lora.r=8",
      "lora.alpha=16", "lora.dropout=0", "training.learning_rate=1e-2", "training.batch_size=8",
      "training.logging_steps=5", "training.warmup=0"]


def lm_config(model_dir, train, dev, *extra):
    return load_config(None, [f"model.name={model_dir}", f"data.train={train}",
                              f"data.validation={dev}", *LM, *extra])


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


def test_labels_cover_the_response_and_eos_only(tokenizer):
    record = {"message": "order pizza", "output": {"intent": "order_food"}, "_src": "f:1"}
    fmt = PromptFormat(TEMPLATE, "{output}")
    feature = encode_sft([record], tokenizer, fmt, 160, "left").features[0]
    prompt = tokenizer(TEMPLATE.format(message="order pizza"))["input_ids"]
    response = tokenizer('{"intent": "order_food"}', add_special_tokens=False)["input_ids"]
    assert feature["input_ids"] == prompt + response + [tokenizer.eos_token_id]
    assert feature["labels"] == [IGNORE] * len(prompt) + response + [tokenizer.eos_token_id]
    assert tokenizer.decode([t for t in feature["labels"] if t != IGNORE]) == \
        '{"intent": "order_food"}</s>'


def test_template_rendering_fields_nested_values_and_errors(tokenizer):
    record = {"question": "2+2?", "options": ["3", "4"], "meta": {"id": 7}, "_src": "q.jsonl:4"}
    assert fill("{question}\n{options_block}\nid {meta[id]}", record, "prompt_template") == \
        "2+2?\nA. 3\nB. 4\nid 7"
    assert fill("{meta}", record, "prompt_template") == '{"id": 7}'
    with pytest.raises(DataError) as info:
        fill("{missing}", record, "prompt_template")
    assert "q.jsonl" in str(info.value) and "row 4" in str(info.value)
    assert "'missing'" in str(info.value) and "question" in str(info.value)


def test_chat_messages_and_chat_template(tokenizer):
    fmt = PromptFormat(None, None)
    record = {"messages": [{"role": "user", "content": "hi"},
                           {"role": "assistant", "content": "hello"}]}
    assert fmt.prompt(record, tokenizer) == "<|user|>hi<|end|><|assistant|>"
    assert fmt.response(record) == "hello"
    chat = PromptFormat("{message}", "{output}", chat_template=True, system_prompt="be brief")
    assert chat.prompt({"message": "x"}, tokenizer) == \
        "<|system|>be brief<|end|><|user|>x<|end|><|assistant|>"


def test_truncation_cuts_the_prompt_from_the_left_never_the_response(tokenizer):
    fmt = PromptFormat("{message}", "{answer}")
    long = {"message": "a" * 50 + "KEEP", "answer": "yes", "_src": "t:1"}
    encoded = encode_sft([long], tokenizer, fmt, 20, "left")
    ids = encoded.features[0]["input_ids"]
    assert len(ids) == 20 and tokenizer.decode(ids).endswith("KEEPyes</s>")
    assert "cut from the left" in encoded.notes[0]
    too_long = {"message": "q", "answer": "y" * 30, "_src": "t:2"}
    kept = encode_sft([long, too_long], tokenizer, fmt, 20, "left")
    assert len(kept.features) == 1 and "dropped" in kept.notes[-1] and "t:2" in kept.notes[-1]
    with pytest.raises(DataError, match="response is 31 tokens"):
        encode_sft([too_long], tokenizer, fmt, 20, "error")
    short = {"message": "hi", "answer": "yes", "_src": "t:3"}
    dropped = encode_sft([long, too_long, short], tokenizer, fmt, 20, "drop")
    alone = encode_sft([short], tokenizer, fmt, 20, "drop").features
    assert [f["input_ids"] for f in dropped.features] == [alone[0]["input_ids"]]
    assert "2 of 3 examples were dropped: prompt + response are longer" in dropped.notes[-1]


def test_packed_examples_do_not_attend_to_each_other(tiny_llama, tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    fmt = PromptFormat("{message}", "{answer}")
    records = [{"message": "order pizza", "answer": "food"},
               {"message": "a flight to paris", "answer": "flight"}]
    features = encode_sft(records, tokenizer, fmt, 64, "left").features
    rows = pack(features, 64)
    assert len(rows) == 1 and rows[0]["position_ids"][len(features[0]["input_ids"])] == 0
    batch = CausalCollator(tokenizer.pad_token_id)(rows)
    assert "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                       use_cache=False).logits  # as in training: no cache, so no KV offset
        alone = [model(input_ids=torch.tensor([f["input_ids"]])).logits for f in features]
    first = len(features[0]["input_ids"])
    assert torch.allclose(packed[0, :first], alone[0][0], atol=1e-5)
    assert torch.allclose(packed[0, first:], alone[1][0], atol=1e-5)
    assert batch["labels"][0, first].item() == IGNORE  # the next example's prompt


def test_first_k_mask_and_kd_loss():
    labels = torch.tensor([[IGNORE, 5, 6, 7, IGNORE, 8, 9, 10]])
    assert first_k_mask(labels, 2).tolist() == [[False, True, True, False, False, True, True,
                                                  False]]
    logits = torch.randn(1, 8, 12)
    assert kd_loss(logits, logits.clone(), labels, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(logits, torch.randn(1, 8, 12), labels, 2.0).item() > 0


def test_training_lowers_eval_loss_and_logs_each_loss_term(tiny_llama, intent_lm_files,
                                                          tmp_path):
    from loralab.training.recipe import train

    config = lm_config(tiny_llama, *intent_lm_files, "training.epochs=4", "name=intent",
                       "training.logging_steps=1",
                       "training.loss=[{type: ce}, {type: first_k_ce, weight: 0.5, k: 4}, "
                       "{type: kd, weight: 0.1, temperature: 2}]")
    metrics = train(config, tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "diagnostics.jsonl").read_text()
             .splitlines()]
    steps = [x for x in lines if not x.get("eval")]
    evals = [x for x in lines if x.get("eval")]
    assert {"loss_ce", "loss_first_k_ce", "loss_kd"} <= set(steps[0])
    assert steps[0]["loss_kd"] == pytest.approx(0.0, abs=1e-4)  # B = 0: student == teacher
    assert steps[-1]["loss_kd"] > 0
    assert evals[-1]["loss"] < evals[0]["loss"] * 0.7
    assert metrics["best"]["perplexity"] == pytest.approx(torch.tensor(
        metrics["best"]["loss"]).exp().item(), rel=1e-5)
    assert metrics["adapter"] == "lora_intent_llama_r8"
    adapter = tmp_path / "run" / metrics["adapter"]
    assert json.loads((adapter / "adapter_config.json").read_text())["task_type"] == "CAUSAL_LM"


def test_adapter_reloads_and_generates_the_same_text(tiny_llama, intent_lm_files, tmp_path):
    from loralab.models.generate import Decoding, generate_texts
    from loralab.tasks import load_adapter
    from loralab.training.recipe import TrainingRecipe

    config = lm_config(tiny_llama, *intent_lm_files, "training.epochs=2", "name=gen")
    recipe = TrainingRecipe(config, tmp_path / "run", progress=False)
    metrics = recipe.run_all()
    prompts = [TEMPLATE.format(message=m) for m in ("order sushi", "book a flight to berlin")]
    decoding = Decoding(max_new_tokens=24)
    trained = generate_texts(recipe.model, recipe.built.tokenizer, prompts, decoding)
    loaded = load_adapter(tmp_path / "run" / metrics["adapter"])
    assert loaded.task.name == "causal_lm"
    assert generate_texts(loaded.model, loaded.tokenizer, prompts, decoding) == trained
    with loaded.model.disable_adapter():
        base = generate_texts(loaded.model, loaded.tokenizer, prompts, decoding)
    assert base != trained


def test_generation_metrics_and_eval_baseline_files(tiny_llama, intent_lm_files, tmp_path,
                                                    capsys):
    from loralab.cli import main
    from loralab.training.recipe import train

    config = lm_config(tiny_llama, *intent_lm_files, "training.epochs=1", "name=cmp",
                       "data.metrics=[json]", "eval.generate=true", "eval.max_samples=6",
                       "eval.max_new_tokens=8")
    metrics = train(config, tmp_path / "run", progress=False)
    for key in ("valid_json", "intent_accuracy", "json_entity_f1", "generated"):
        assert key in metrics["best"]
    assert metrics["best"]["generated"] == 6
    adapter = tmp_path / "run" / metrics["adapter"]
    out = tmp_path / "eval"
    assert main(["eval", str(adapter), "--baseline", "--output", str(out), "--no-progress",
                 "--set", "data.max_eval_samples=5", "--set", "eval.max_new_tokens=8"]) == 0
    lora = json.loads((out / "lora_results.json").read_text())
    base = json.loads((out / "baseline_results.json").read_text())
    assert lora["examples"] == base["examples"] == 5
    assert lora["decoding"] == base["decoding"]
    table = (out / "comparison.md").read_text()
    assert "| valid_json |" in table and "| loss (lower is better) |" in table
    delta = lora["loss"] - base["loss"]
    assert f"{delta:+.4f}" in table
    lines = (out / "lora_generations.jsonl").read_text().splitlines()
    assert len(lines) == 5 and "generated" in json.loads(lines[0])
    capsys.readouterr()
    assert main(["predict", str(adapter), "--text", "order sushi", "--text", "order pizza"]) == 0
    predicted = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [p["message"] for p in predicted] == ["order sushi", "order pizza"]
    assert all(isinstance(p["generated"], str) for p in predicted)
    assert main(["eval", "--model", str(tiny_llama), "--config", str(tmp_path / "run" /
                 "config.yaml"), "--output", str(tmp_path / "base"), "--no-progress",
                 "--set", "data.max_eval_samples=3", "--set", "eval.max_new_tokens=4"]) == 0
    alone = json.loads((tmp_path / "base" / "base_results.json").read_text())
    assert alone["examples"] == 3 and alone["model"] == "base"


def test_qlora_is_refused_on_cpu_before_loading(tmp_path):
    from loralab.models.placement import Placement

    config = load_config(None, ["model.task=causal_lm", "model.name=no/such-model",
                                "model.quantization=4bit"])
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: QLoRA is allowed here")
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        get_task("causal_lm", config).build_model(config, None, Placement.cpu_fp32())


def test_causal_baseline_is_evaluated_without_training(tiny_llama, intent_lm_files, tmp_path):
    from loralab.training.recipe import train

    config = lm_config(tiny_llama, *intent_lm_files, "lora.enabled=false")
    metrics = train(config, tmp_path / "base", progress=False)
    assert metrics["steps"] == 0 and metrics["train_seconds"] == 0
    assert metrics["adapter"] is None and metrics["trainable_parameters"] == 0
    assert metrics["best"]["loss"] > 0


def test_encoder_only_and_causal_only_keys_are_refused():
    with pytest.raises(ConfigError, match="data.packing is for model.task=causal_lm"):
        load_config(None, ["data.packing=true"])
    with pytest.raises(ConfigError, match="weighted is for encoder tasks"):
        load_config(None, ["model.task=causal_lm", "lora.method=weighted"])


def test_named_kd_teacher_is_loaded_frozen(tiny_llama, intent_lm_files, tmp_path):
    from loralab.training.recipe import TrainingRecipe

    config = lm_config(tiny_llama, *intent_lm_files, "training.epochs=1",
                       f"training.loss=[{{type: ce}}, {{type: kd, teacher: '{tiny_llama}'}}]")
    recipe = TrainingRecipe(config, tmp_path / "run", progress=False)
    recipe.run_all()
    teacher = recipe.task.teacher
    assert teacher is not None and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    lines = [json.loads(x) for x in (tmp_path / "run" / "diagnostics.jsonl").read_text()
             .splitlines() if '"eval"' not in x]
    assert all("loss_kd" in line for line in lines)


def test_gpt2_conv1d_layers_take_the_presets(tmp_path):
    import transformers

    from loralab.models.placement import Placement

    from conftest import write_lm_tokenizer

    folder = tmp_path / "gpt2"
    tokenizer = write_lm_tokenizer(folder)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=3, n_head=2, n_positions=64)
    ).save_pretrained(folder)
    config = load_config(None, ["model.task=causal_lm", f"model.name={folder}",
                                "lora.preset=attention", "lora.layers=2", "lora.r=4"])
    built = get_task("causal_lm", config).build_model(config, None, Placement.cpu_fp32())
    assert sorted(built.target_modules) == [f"transformer.h.{i}.attn.{n}" for i in (1, 2)
                                            for n in ("c_attn", "c_proj")]
    assert built.model_type == "gpt2"


def test_stop_strings_end_generated_answers(tiny_llama, tokenizer):
    from loralab.models.generate import Decoding, cut_at_stop, generate_texts

    assert cut_at_stop("answer\nmore", ["\n"]) == "answer"
    assert cut_at_stop("a END b STOP", ["STOP", "END"]) == "a "
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    free = generate_texts(model, tokenizer, ["order pizza"], Decoding(max_new_tokens=30))[0]
    stop = next(ch for ch in free[2:] if ch.strip())  # a character the model does write
    cut = generate_texts(model, tokenizer, ["order pizza"],
                         Decoding(max_new_tokens=30, stop=[stop]))[0]
    assert stop not in cut
    assert cut == free.split(stop)[0].strip()


def test_data_synth_cli_writes_the_files(tmp_path, capsys):
    from loralab.cli import main

    assert main(["data", "synth", "json-extraction", "--n", "50", "--seed", "3",
                 "--out", str(tmp_path / "jx")]) == 0
    rows = (tmp_path / "jx" / "train.jsonl").read_text().splitlines()
    assert len(rows) == 45 and len((tmp_path / "jx" / "eval.jsonl").read_text()
                                   .splitlines()) == 5
    first = json.loads(rows[0])
    assert first["message"] in first["prompt"] and "intent" in first["output"]
    assert main(["data", "synth", "multiple-choice", "--n", "40", "--out",
                 str(tmp_path / "mc")]) == 0
    mc = [json.loads(x) for x in (tmp_path / "mc" / "train.jsonl").read_text().splitlines()]
    assert {r["category"] for r in mc} == {"arithmetic", "units", "capitals"}
    assert all(r["answer"] in "ABCD" and len(r["options"]) == 4 for r in mc)
    assert main(["data", "synth", "json-extraction", "--n", "5", "--out", str(tmp_path)]) == 2


def test_specialist_grid_trains_one_adapter_per_category_and_the_base_model(
        tiny_llama, tmp_path):
    import yaml

    from loralab.cli import main
    from loralab.data.synth_mc import write_multiple_choice_dataset

    write_multiple_choice_dataset(tmp_path / "mc", 120, seed=0)
    grid = {
        "name": "mc", "model": {"name": str(tiny_llama), "task": "causal_lm",
                                "max_length": 96},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-2, "threads": 1,
                     "metric_for_best": "mc_accuracy"},
        "data": {"train": str(tmp_path / "mc" / "train.jsonl"),
                 "validation": str(tmp_path / "mc" / "eval.jsonl"),
                 "format": "multiple_choice", "response_template": "{answer}",
                 "prompt_template": "{question}\n{options_block}\nAnswer:",
                 "metrics": ["multiple_choice"]},
        "eval": {"generate": True, "max_samples": 8, "max_new_tokens": 2},
        "datasets": [{"name": c, "data.filter": {"category": c}} for c in ("units",
                                                                            "capitals")],
        "baseline": True,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    out = tmp_path / "out"
    assert main(["grid", str(path), "--output", str(out), "--jobs", "2"]) == 0
    metrics = {p.parent.name.rsplit("-", 1)[0]: json.loads(p.read_text())
               for p in (out / "runs").glob("*/metrics.json")}
    assert set(metrics) == {"units-llama-r4-a8-lall-s42", "units-llama-baseline-s42",
                            "capitals-llama-r4-a8-lall-s42", "capitals-llama-baseline-s42"}
    base = metrics["units-llama-baseline-s42"]
    assert base["steps"] == 0 and base["adapter"] is None and "mc_accuracy" in base["best"]
    assert metrics["units-llama-r4-a8-lall-s42"]["steps"] > 0
    assert main(["compare", str(out)]) == 0
    best = json.loads((out / "best.json").read_text())
    assert {(g["dataset"], g["metric"]) for g in best["groups"]} == {
        ("units", "mc_accuracy"), ("capitals", "mc_accuracy")}
