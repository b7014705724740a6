import pytest

from loralab.config import apply_override, dump_config, load_config, validate_config
from loralab.errors import ConfigError


def error_of(raw):
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return str(info.value)


def test_defaults_are_the_product_defaults():
    config = validate_config({})
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (16, 32, 0.1)
    assert config.lora.method == "standard"
    assert config.model.task == "sequence_classification"


def test_unknown_key_names_the_path_and_suggests():
    assert error_of({"lora": {"alpah": 8}}) == \
        "lora.alpah: unknown key; did you mean lora.alpha?"
    assert "did you mean data.columns.text?" in error_of({"data": {"columns": {"txt": "a"}}})
    assert error_of({"modle": {}}).startswith("modle: unknown key; did you mean model?")


def test_unknown_key_without_close_match_lists_known_keys():
    message = error_of({"training": {"zzz": 1}})
    assert "training.zzz: unknown key; known keys of training:" in message
    assert "learning_rate" in message


def test_wrong_type_names_key_and_value():
    message = error_of({"training": {"epochs": "many"}})
    assert message.startswith("training.epochs:") and "'many'" in message
    assert error_of({"lora": {"layers": "top"}}) == \
        "lora.layers: expected int | list[int] | literal['all'] (got 'top')"


def test_cross_field_rules():
    assert "use_dora" in error_of({"lora": {"method": "weighted", "use_dora": True}})
    assert "overflows fp16" in error_of({"lora": {"method": "weighted"},
                                         "training": {"precision": "fp16"}})
    assert "eval_steps" in error_of({"training": {"eval_strategy": "steps"}})
    assert "model.labels has 2 names" in error_of({"model": {"labels": ["a", "b"],
                                                             "num_labels": 3}})


def test_weighted_only_keys_are_accepted_and_noted_under_standard():
    """So one grid can vary lora.method over a base config that sets the weighted keys."""
    from loralab.training.variants import lora_variant

    config = validate_config({"lora": {"lambda_reg": 0.1, "scale_factor": 2.0}})
    assert lora_variant(config.lora).notes() == [
        "lora.scale_factor=2.0 only acts with lora.method=weighted; ignored",
        "lora.lambda_reg=0.1 only acts with lora.method=weighted; ignored"]
    weighted = validate_config({"lora": {"method": "weighted", "lambda_reg": 0.1}})
    assert lora_variant(weighted.lora).notes() == []


def test_overrides_parse_yaml_values_and_create_sections():
    raw = {}
    apply_override(raw, "training.learning_rate=1e-4")
    apply_override(raw, "lora.layers=[0, -1]")
    apply_override(raw, "training.group_by_length=false")
    apply_override(raw, "training.eval_strategy=no")  # YAML 1.1 would make this False
    config = validate_config(raw)
    assert config.training.learning_rate == pytest.approx(1e-4)
    assert config.lora.layers == [0, -1]
    assert config.training.group_by_length is False
    assert config.training.eval_strategy == "no"


def test_override_errors():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_override({}, "training.epochs")
    with pytest.raises(ConfigError, match="lora.r is a value, not a section"):
        apply_override({"lora": {"r": 8}}, "lora.r.x=1")
    with pytest.raises(ConfigError, match="lora.rank: unknown key; did you mean lora.r"):
        load_config(None, ["lora.rank=8"])


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.yaml"
    path.write_text("data:\n  train: ../data/train.jsonl\nmodel:\n  name: ./model\n")
    config = load_config(path)
    assert config.data.train == str(tmp_path / "data" / "train.jsonl")
    assert config.model.name == str(tmp_path / "sub" / "model")


def test_yaml_errors_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listing)


def test_dump_round_trips():
    config = load_config(None, ["lora.r=4", "name=x"])
    again = validate_config(__import__("yaml").safe_load(dump_config(config)))
    assert again == config


def test_layer_counts_and_aliases():
    assert "expected int | list[int]" in error_of({"lora": {"layers": True}})
    assert "lora.layers: 0 adapts no layer" in error_of({"lora": {"layers": 0}})
    assert error_of({"model_name_or_path": "x"}).endswith("did you mean model.name?")
    assert error_of({"training": {"lr": 1}}).endswith("did you mean training.learning_rate?")


def test_weighted_knobs_validate_under_either_method():
    for key, value in (("scale_factor", 2.0), ("output_dropout", 0.1), ("lambda_reg", 0.1),
                       ("reg_tolerance", 0.1), ("eps", 1e-3)):
        assert getattr(validate_config({"lora": {key: value}}).lora, key) == value
        assert key in error_of({"lora": {key: -1}})
    weighted = validate_config({"lora": {"method": "weighted", "scale_factor": 2.0}})
    # a dumped config (every key present) validates again
    assert validate_config(weighted.model_dump()) == weighted
    assert validate_config(validate_config({}).model_dump()) == validate_config({})
