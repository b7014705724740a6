"""The rules behind the catalogue, one by one: the prediction input rule (one function for
predict and serve), the adapter weights check against adapter_config.json, the model's
position limit, duplicate YAML keys, finite numbers, and a failed read named as a read."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

from loralab.cli.entry import filesystem_message
from loralab.config import load_config, parse_yaml
from loralab.errors import ConfigError, InputError, UserError
from loralab.models.adapter_check import check_adapter_weights
from loralab.models.limits import check_max_length, position_limit
from loralab.tasks import check_prediction_inputs

from conftest import tiny_config


@pytest.mark.parametrize(("records", "pairs", "message", "field"), [
    ([], None, "no inputs", None),
    ([{"text": "ok"}, {"text": " \t"}], None, r"input 2: the text is empty", "text"),
    ([{"text": "a", "text_pair": ""}], None, r"second text .* is empty", "text_pair"),
    ([{"text": "a", "text_pair": "b"}], False, "trained on single texts", "text_pair"),
    ([{"text": "a"}], True, "trained on text pairs", "text_pair"),
    ([{"text": "a\x00b", "_src": "f.jsonl:3"}], None, r"f\.jsonl:3: the text holds a NUL", "text"),
    ([{"text": "caf\udcff"}], None, "not valid Unicode", "text"),
    ([{"prompt": ""}], False, "the prompt is empty", "prompt"),
    ([{"tokens": []}], False, "non-empty list", "tokens"),
    ([{"messages": [{"role": "user", "content": "x\x00"}]}], False, "NUL", "messages"),
])
def test_the_input_rule_refuses_with_the_input_and_field(records, pairs, message, field):
    with pytest.raises(InputError, match=message) as info:
        check_prediction_inputs(records, pairs)
    assert info.value.field == field and info.value.exit_code == 2


def test_the_input_rule_accepts_what_an_adapter_can_answer():
    check_prediction_inputs([{"text": "a", "text_pair": None}], False)
    check_prediction_inputs([{"text": "a", "text_pair": "b"}], True)
    check_prediction_inputs([{"text": "é ü 中文", "text_pair": "b"}], None)
    check_prediction_inputs([{"tokens": ["John", "lives"]}], False)


@pytest.fixture
def saved_adapter(tmp_path):
    """A real PEFT adapter of a tiny BERT, r=4 with a rank_pattern giving `value` rank 2."""
    torch.manual_seed(0)
    base = transformers.BertModel(tiny_config("bert"))
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                      rank_pattern={"value": 2})
    folder = tmp_path / "adapter"
    get_peft_model(base, lora).save_pretrained(folder)
    return folder


def test_the_adapter_check_follows_rank_pattern_and_names_the_mismatch(saved_adapter, tmp_path):
    check_adapter_weights(saved_adapter)  # query r=4, value r=2: as the config says
    changed = tmp_path / "changed"
    shutil.copytree(saved_adapter, changed)
    config = json.loads((changed / "adapter_config.json").read_text())
    config["rank_pattern"] = {}
    (changed / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"value has LoRA rank 2 .* says r=4"):
        check_adapter_weights(changed)


def test_the_adapter_check_refuses_half_a_pair_and_cut_files(saved_adapter):
    weights = saved_adapter / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k: v for k, v in tensors.items() if "query.lora_B" not in k}, weights)
    with pytest.raises(UserError, match=r"query has no lora_B weight"):
        check_adapter_weights(saved_adapter)
    weights.write_bytes(weights.read_bytes()[:64])
    with pytest.raises(UserError, match=r"not a readable safetensors file, truncated"):
        check_adapter_weights(saved_adapter)
    weights.unlink()
    with pytest.raises(UserError, match=r"no adapter weights"):
        check_adapter_weights(saved_adapter)


def test_the_position_limit_counts_roberta_offset_positions():
    assert position_limit(tiny_config("bert")) == 128
    assert position_limit(tiny_config("roberta")) == 129  # 130 minus pad_token_id 0 + 1
    assert position_limit(transformers.GPT2Config(n_positions=64)) == 64
    assert position_limit(object()) is None


def test_max_length_above_the_limit_is_refused_with_both_numbers(tiny_bert):
    config = load_config(None, [f"model.name={tiny_bert}", "model.max_length=512"])
    with pytest.raises(ConfigError, match=r"model\.max_length=512 is more than .*\(128 tokens\)"):
        check_max_length(config.model)
    check_max_length(load_config(None, [f"model.name={tiny_bert}"]).model)  # 128: fits


def test_duplicate_yaml_keys_are_refused_but_merge_keys_may_override():
    with pytest.raises(Exception, match=r"the key 'r' appears twice .*lines 1 and 3"):
        parse_yaml("r: 1\nalpha: 2\nr: 3\n")
    assert parse_yaml("base: &b {r: 1, alpha: 2}\nlora:\n  <<: *b\n  r: 8\n")["lora"] == {
        "r": 8, "alpha": 2}


@pytest.mark.parametrize("override", ["lora.alpha=.nan", "training.epochs=-.inf",
                                      "eval.temperature=.inf", "training.max_grad_norm=.inf",
                                      "training.loss=[{type: ce, weight: .inf}]"])
def test_every_float_of_the_schema_is_finite(override):
    with pytest.raises(ConfigError, match="finite number"):
        load_config(None, [override])


def test_a_failed_read_is_reported_as_a_read(tmp_path):
    unreadable = tmp_path / "data.csv"
    unreadable.write_text("x\n")
    unreadable.chmod(0)
    exc = PermissionError(errno.EACCES, "Permission denied", str(unreadable))
    import os

    expected = "read" if not os.access(unreadable, os.R_OK) else "write"  # root reads anyway
    assert filesystem_message(exc) == f"cannot {expected} {unreadable}: Permission denied"
    full = OSError(errno.ENOSPC, "No space left on device", str(unreadable))
    assert filesystem_message(full).startswith("cannot write ")
