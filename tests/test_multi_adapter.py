"""Two adapters on one base (`adapters:`) on a tiny random Llama: code on the attention
projections, docstring on the MLP projections. Only the active adapter trains; both are
saved (a run folder each, PEFT's multi-adapter folder) and reload into one model whose
outputs per adapter equal the training-time outputs; predict / eval switch adapters with
set_adapter on one loaded base."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
import yaml
from peft import PeftModel
from pipeline_helpers import bilora_raw, write_mbpp, write_yaml

from loralab.cli import main
from loralab.config import validate_config
from loralab.evaluation.gate.results import load_results
from loralab.models.placement import Placement
from loralab.tasks import get_task, load_adapter, load_adapter_set
from loralab.training.multi import MultiAdapterRecipe
from loralab.training.optim import build_optimizer

PROMPT = "Write a function that adds 3 to x.\n"


def probe_logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer([PROMPT, "def add(x):\n    return x + 4\nDoc: "], return_tensors="pt",
                      padding=True)
    with torch.no_grad():
        return model(**batch).logits.detach().clone()


@pytest.fixture(scope="module")
def trained(tiny_llama, tmp_path_factory):
    """One two-adapter run; the outputs of each adapter on the trained model in memory."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("multi")
    config = validate_config(bilora_raw(tiny_llama, write_mbpp(root / "mbpp.jsonl")))
    recipe = MultiAdapterRecipe(config, root / "run", progress=False)
    metrics = recipe.run_all()
    model, tokenizer = recipe.model.eval(), recipe.recipes[0].built.tokenizer
    outputs = {}
    for name in ("code", "docstring"):
        model.set_adapter(name)
        outputs[name] = probe_logits(model, tokenizer)
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    return {"run": root / "run", "metrics": metrics, "outputs": outputs, "weights": weights,
            "tokenizer": tokenizer, "model_dir": tiny_llama, "config": config}


def test_only_the_active_adapter_requires_grad_and_trains(tiny_llama, tmp_path):
    config = validate_config(bilora_raw(tiny_llama, write_mbpp(tmp_path / "mbpp.jsonl")))
    named = config.adapter_configs()
    built = get_task("causal_lm", named[0][1]).build_adapters(named, Placement.cpu_fp32())
    model = built[0].model
    assert all(b.model is model for b in built)  # one base model, loaded once
    assert {t.rsplit(".", 1)[-1] for t in built[0].target_modules} == {"q_proj", "k_proj",
                                                                       "v_proj", "o_proj"}
    assert {t.rsplit(".", 1)[-1] for t in built[1].target_modules} == {"gate_proj", "up_proj",
                                                                       "down_proj"}
    tokenizer = built[0].tokenizer
    for active, other in (("code", "docstring"), ("docstring", "code")):
        model.set_adapter(active)
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable and all(f".{active}." in n for n in trainable)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        optimizer = build_optimizer(model, named[0][1].training, [])
        batch = tokenizer([PROMPT], return_tensors="pt")
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        assert changed and all(f".{active}." in n for n in changed), changed
        assert not any(f".{other}." in n for n in changed)
        optimizer.zero_grad(set_to_none=True)


def test_run_layout_and_metrics(trained):
    run, metrics = trained["run"], trained["metrics"]
    assert metrics["kind"] == "loralab.multi_adapter_run"
    assert list(metrics["adapters"]) == ["code", "docstring"]
    for name in ("code", "docstring"):
        sub = run / name
        assert (sub / "config.yaml").is_file() and (sub / "diagnostics.jsonl").is_file()
        assert json.loads((sub / "metrics.json").read_text()) == metrics["adapters"][name]
        assert (sub / f"lora_{name}_llama_r4" / "adapter_config.json").is_file()
        assert (run / "adapters" / name / "adapter_config.json").is_file()
        assert not (sub / "checkpoint").exists()
    code, doc = metrics["adapters"]["code"], metrics["adapters"]["docstring"]
    assert code["trainable_parameters"] != doc["trainable_parameters"]  # each its own weights
    assert code["total_parameters"] - code["trainable_parameters"] == \
        doc["total_parameters"] - doc["trainable_parameters"]  # the same base model
    stored = validate_config(yaml.safe_load((run / "docstring" / "config.yaml").read_text()))
    assert stored.training.learning_rate == 2e-2 and stored.lora.preset == "mlp"
    assert stored.data.prompt_template == "{code}\nDoc: " and not stored.adapters
    results = load_results(run)
    assert results.shape == "multi_run"
    assert results.metrics["code.validation.loss"] == code["best"]["loss"]
    assert results.metrics["docstring.final.perplexity"] == doc["final"]["perplexity"]
    assert "run.train_seconds" in results.metrics


def test_plain_peft_reads_the_multi_adapter_folder(trained):
    folder = trained["run"] / "adapters"
    base = transformers.AutoModelForCausalLM.from_pretrained(trained["model_dir"])
    model = PeftModel.from_pretrained(base, str(folder / "code"), adapter_name="code")
    model.load_adapter(str(folder / "docstring"), adapter_name="docstring")
    model.eval()
    for name in ("code", "docstring"):
        model.set_adapter(name)
        got = probe_logits(model, trained["tokenizer"])
        assert torch.allclose(got, trained["outputs"][name], atol=1e-5), name
    assert not torch.allclose(trained["outputs"]["code"], trained["outputs"]["docstring"])
    configs = [json.loads((folder / n / "adapter_config.json").read_text())
               for n in ("code", "docstring")]
    assert not set(configs[0]["target_modules"]) & set(configs[1]["target_modules"])


def test_each_run_folder_adapter_alone_gives_the_training_time_outputs(trained):
    for name in ("code", "docstring"):
        folder = next((trained["run"] / name).glob("lora_*"))
        loaded = load_adapter(folder, device="cpu")
        got = probe_logits(loaded.model, loaded.tokenizer)
        assert torch.allclose(got, trained["outputs"][name], atol=1e-5), name


def test_the_first_adapter_is_untouched_while_the_second_trains(trained):
    """The code adapter saved when its run ended equals its weights after docstring trained."""
    from safetensors.torch import load_file

    saved = load_file(str(next((trained["run"] / "code").glob("lora_*"))
                          / "adapter_model.safetensors"))
    final = {n.replace(".code.", "."): w for n, w in trained["weights"].items()
             if ".code." in n}
    assert sorted(saved) == sorted(final) and saved
    for key, value in saved.items():
        assert torch.equal(final[key], value), key


def test_adapter_set_loads_the_base_once_and_switches(trained, monkeypatch):
    calls = []
    real = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        calls.append(args[0] if args else kwargs)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        classmethod(counting))
    adapters = load_adapter_set(trained["run"], device="cpu")
    assert len(calls) == 1  # the base weights are read once for both adapters
    code = adapters.use("code")
    weight = code.model.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight
    first = probe_logits(code.model, code.tokenizer)
    doc = adapters.use("docstring")
    assert doc.model is code.model and doc.model.active_adapter == "docstring"
    assert doc.model.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight \
        is weight
    second = probe_logits(doc.model, doc.tokenizer)
    assert torch.allclose(first, trained["outputs"]["code"], atol=1e-5)
    assert torch.allclose(second, trained["outputs"]["docstring"], atol=1e-5)
    assert code.config.data.metrics == ["code"] and doc.config.data.metrics == ["text"]
    assert len(calls) == 1


def test_predict_with_adapter_equals_the_adapter_alone(trained, capsys):
    def predict(path, *extra):
        assert main(["predict", str(path), *extra, "--text", "Write a function that adds 2 "
                     "to x."]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["generated"]

    answers = {name: predict(trained["run"], "--adapter", name) for name in ("code",
                                                                             "docstring")}
    for name, answer in answers.items():
        assert answer == predict(next((trained["run"] / name).glob("lora_*")))
    assert main(["predict", str(trained["run"]), "--text", "x"]) == 2
    assert "give --adapter NAME" in capsys.readouterr().err
    assert main(["predict", str(trained["run"]), "--adapter", "nope", "--text", "x"]) == 2
    assert "no adapter 'nope'" in capsys.readouterr().err


def test_eval_all_adapters_with_the_base_model_writes_one_flat_file(trained, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["eval", str(trained["run"]), "--all-adapters", "--baseline", "--split", "test",
                 "--output", str(out), "--no-progress", "--set", "data.max_eval_samples=3"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    flat = json.loads((out / "metrics.json").read_text())
    for name, suite in (("code", "pass@1"), ("docstring", "rougeL")):
        assert (out / name / "comparison.md").is_file()
        lora = json.loads((out / name / "lora_results.json").read_text())
        assert flat[f"{name}.test.{suite}"] == lora[suite] == printed[name]["lora"][suite]
        assert flat[f"base.{name}.test.{suite}"] == printed[name]["baseline"][suite]
        assert flat[f"{name}.test.examples"] == 3
        assert flat[f"{name}.test.loss"] < flat[f"base.{name}.test.loss"]  # trained vs base
    assert "code.test.rougeL" not in flat and "docstring.test.pass@1" not in flat
    alone = tmp_path / "alone"
    assert main(["eval", str(next((trained["run"] / "code").glob("lora_*"))), "--split", "test",
                 "--output", str(alone), "--no-progress", "--set",
                 "data.max_eval_samples=3"]) == 0
    single = json.loads((alone / "lora_results.json").read_text())
    assert single["pass@1"] == flat["code.test.pass@1"]
    assert single["loss"] == pytest.approx(flat["code.test.loss"], abs=1e-6)
    results = load_results(out / "metrics.json")
    assert results.metrics["base.docstring.test.rougeL"] == flat["base.docstring.test.rougeL"]


def test_a_config_with_lora_and_adapters_is_refused_before_anything_is_written(
        trained, tmp_path, capsys):
    raw = bilora_raw(trained["model_dir"], tmp_path / "none.jsonl")
    raw["lora"] = {"r": 8}
    config = write_yaml(tmp_path / "both.yaml", raw)
    assert main(["train", str(config), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "lora.r and adapters" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
