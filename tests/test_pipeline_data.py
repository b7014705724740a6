"""The pieces of the job-5 pipeline that are not training: configs from a section of a params
file (`FILE:KEY`) with `--set-from` profiles, `loralab data export` (raw and split, read back
with `--data`), MBPP turned around for docstrings, extra training files (feedback pairs) and
the LLM judge in `loralab eval` against a local test double."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import DOC_PROMPT, bilora_raw, write_mbpp, write_yaml

from loralab.cli import main
from loralab.config import load_config, validate_config
from loralab.config.exported_data import with_exported_data
from loralab.data import load_splits
from loralab.errors import ConfigError
from loralab.evaluation.gate.rules import load_rules_file
from loralab.tasks import get_task
from loralab.tasks.sft_format import encode_sft

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bilora" / "params.yaml"


def params_file(tmp_path, model_dir, mbpp) -> Path:
    raw = {"profile": "smoke", "train": bilora_raw(model_dir, mbpp),
           "profiles": {"smoke": {"train": {"training.epochs": 2,
                                            "adapters.docstring.lora.r": 2},
                                  "data": {"data.max_train_samples": 10},
                                  "gate": ["code.test.pass@1 >= base - 0.5"]},
                        "full": {"train": {}, "data": None}}}
    return write_yaml(tmp_path / "params.yaml", raw)


def test_the_shipped_params_resolve_in_every_profile():
    raw = yaml.safe_load(EXAMPLE.read_text())
    assert raw["profile"] == "smoke" and set(raw["profiles"]) == {"full", "cpu", "smoke"}
    for profile in ("full", "cpu", "smoke"):
        config = load_config(f"{EXAMPLE}:train", set_from=[
            f"{EXAMPLE}:profiles.{profile}.data", f"{EXAMPLE}:profiles.{profile}.train"])
        named = dict(config.adapter_configs())
        assert list(named) == ["code", "docstring"]
        assert named["code"].lora.preset == "attention" and named["docstring"].lora.preset \
            == "mlp"
        assert named["code"].data.metrics == ["code"] and named["docstring"].data.metrics == \
            ["text"]
        assert named["docstring"].data.response_template == "{text}"
        assert config.model.name == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert config.data.train.endswith("shared/data/mbpp/mbpp.jsonl")
        assert load_rules_file(f"{EXAMPLE}:profiles.{profile}.gate")
    smoke = load_config(f"{EXAMPLE}:train", set_from=[f"{EXAMPLE}:profiles.smoke.train"])
    assert smoke.training.epochs == 1 and smoke.model.max_length == 256


def test_section_and_set_from(tiny_llama, tmp_path):
    params = params_file(tmp_path, tiny_llama, write_mbpp(tmp_path / "mbpp.jsonl"))
    config = load_config(f"{params}:train", ["adapters.code.lora.r=3"],
                         set_from=[f"{params}:profiles.smoke.train",
                                   f"{params}:profiles.full.data"])  # null: no change
    named = dict(config.adapter_configs())
    assert config.training.epochs == 2
    assert named["code"].lora.r == 3 and named["docstring"].lora.r == 2
    assert named["docstring"].training.learning_rate == 2e-2 and named["code"].training \
        .learning_rate == 1e-2
    with pytest.raises(ConfigError, match=r"params\.yaml:profiles\.tiny: profiles has no key "
                                          r"'tiny'; it has: smoke, full"):
        load_config(f"{params}:train", set_from=[f"{params}:profiles.tiny"])
    with pytest.raises(ConfigError, match=r"adapters has no entry named 'cod'; its entries: "
                                          r"code, docstring"):
        load_config(f"{params}:train", ["adapters.cod.lora.r=3"])
    with pytest.raises(ConfigError, match="expected a mapping of KEY: VALUE"):
        load_config(f"{params}:train", set_from=[f"{params}:profiles.smoke.gate"])
    rules = load_rules_file(f"{params}:profiles.smoke.gate")
    assert [r.text for r in rules] == ["code.test.pass@1 >= base - 0.5"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_raw_split_and_read_back(tiny_llama, tmp_path, capsys):
    params = params_file(tmp_path, tiny_llama, write_mbpp(tmp_path / "mbpp.jsonl"))
    prepared, splits = tmp_path / "prepared", tmp_path / "splits"
    assert main(["data", "export", f"{params}:train", "--raw", "--out", str(prepared)]) == 0
    manifest = json.loads((prepared / "export.json").read_text())
    assert manifest["adapters"] == ["code", "docstring"] and manifest["raw"]
    assert manifest["rows"]["code"] == {"train": 48, "validation": 10, "test": 12}  # task ids
    raw_rows = read_jsonl(prepared / "code" / "train.jsonl")
    assert all(601 <= r["task_id"] <= 974 and "_src" not in r for r in raw_rows)
    assert main(["data", "export", f"{params}:train", "--data", str(prepared), "--set-from",
                 f"{params}:profiles.smoke.data", "--out", str(splits)]) == 0
    assert "code: 10 train, 10 validation, 12 test" in capsys.readouterr().out
    first = (splits / "docstring" / "train.jsonl").read_bytes()
    assert main(["data", "export", f"{params}:train", "--data", str(prepared), "--set-from",
                 f"{params}:profiles.smoke.data", "--out", str(splits)]) == 0
    assert (splits / "docstring" / "train.jsonl").read_bytes() == first  # same bytes again

    config = load_config(f"{params}:train", set_from=[f"{params}:profiles.smoke.data"])
    exported = with_exported_data(config, splits)
    for (_name, direct), (_, read_back) in zip(config.adapter_configs(),
                                              exported.adapter_configs()):
        task = get_task("causal_lm", read_back)
        ours, theirs = (load_splits(c.data, task.records) for c in (direct, read_back))
        strip = lambda rows: [{k: v for k, v in r.items() if k != "_src"} for r in rows]  # noqa
        assert {s: strip(r) for s, r in ours.items()} == {s: strip(r) for s, r in theirs.items()}
        assert read_back.data.prompt_template == direct.data.prompt_template
    assert main(["data", "export", f"{params}:train", "--out", str(tmp_path)]) == 2
    assert "holds other files" in capsys.readouterr().err


def test_mbpp_turned_around_gives_code_to_text_examples(tiny_llama, tmp_path):
    config = validate_config(bilora_raw(tiny_llama, write_mbpp(tmp_path / "mbpp.jsonl")))
    docstring = dict(config.adapter_configs())["docstring"]
    task = get_task("causal_lm", docstring)
    record = load_splits(docstring.data, task.records)["train"][0]
    assert task.format.prompt(record, None) == DOC_PROMPT.format(code=record["code"])
    assert task.format.response(record) == record["text"]


def test_extra_train_rows_are_read_as_they_are(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(json.dumps({"prompt": "add 2 to x", "response": "def add(x): ..."})
                        + "\n" + json.dumps({"messages": [
                            {"role": "user", "content": "add 5"},
                            {"role": "assistant", "content": "x + 5"}]}) + "\n")
    raw = bilora_raw(tiny_llama, write_mbpp(tmp_path / "mbpp.jsonl"))
    raw["adapters"][0]["data"]["extra_train"] = ["feedback.jsonl"]
    config = load_config(write_yaml(tmp_path / "c.yaml", raw))
    code = dict(config.adapter_configs())["code"]
    assert code.data.extra_train == [str(feedback)]
    task = get_task("causal_lm", code)
    splits = load_splits(code.data, task.records)
    extra = [r for r in splits["train"] if r.get("_as_is")]
    assert len(extra) == 2 and not any(r.get("_as_is") for s in ("validation", "test")
                                       for r in splits[s])
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    feature = encode_sft(extra[:1], tokenizer, task.format, 96, "left").features[0]
    prompt = tokenizer.decode(tokenizer("add 2 to x")["input_ids"])  # its own, not the template
    assert tokenizer.decode(feature["input_ids"]) == prompt + "def add(x): ...</s>"
    chat = encode_sft(extra[1:], tokenizer, task.format, 96, "left").features[0]
    assert tokenizer.decode(chat["input_ids"]) == "<|user|>add 5<|end|><|assistant|>x + 5</s>"
