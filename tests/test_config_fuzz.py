"""Property-based bad input: hypothesis generates `--set KEY=VALUE` overrides (every key of the
schema and some that are not, values of the wrong type, extremes, inf / nan, huge numbers,
unicode, empty values, YAML of every shape) for `loralab config show` and for the validation-
only `loralab train --dry-run`. Every outcome is exit 0, or exit 2 with exactly one
`loralab: error: ...` line: never a traceback, never another exit code; a config that `config
show` accepts holds only finite numbers and loads again to the same config; a dry run never
writes its output folder.

Bounded and reproducible: `derandomize=True` and the example counts below (CI runs them inside
`python -m pytest`); what it found and was fixed is in tests/bad_input_cases.py.
"""

from __future__ import annotations

import contextlib
import io
import math
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loralab.cli import main
from loralab.config import Config, dump_config, validate_config
from loralab.config.messages import section_model

from conftest import sentiment_rows, write_jsonl

CONFIG_SHOW_EXAMPLES = 500
DRY_RUN_EXAMPLES = 300
FUZZ = settings(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def schema_keys(model: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema (sections walked; lists of sections are one key)."""
    keys = []
    for name, field in model.model_fields.items():
        inner = section_model(field.annotation)
        is_list = getattr(field.annotation, "__origin__", None) is list
        if inner is not None and not is_list:
            keys.extend(schema_keys(inner, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def schema_fields(model: type = Config, prefix: str = "") -> dict[str, object]:
    """{dotted key: its annotation} for every key of schema_keys."""
    out: dict[str, object] = {}
    for name, field in model.model_fields.items():
        inner = section_model(field.annotation)
        if inner is not None and getattr(field.annotation, "__origin__", None) is not list:
            out.update(schema_fields(inner, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = field.annotation
    return out


KEYS = schema_keys()
FIELDS = schema_fields()
NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, 1e308, -1e308, 1e-320, 0.5]))
YAML_WORDS = st.sampled_from([
    ".inf", "-.inf", ".nan", ".NaN", "~", "null", "true", "false", "yes", "no", "''", '""',
    "[]", "{}", "[1, 2]", "{a: 1}", "[[]]", "- a", "a: b", "!!binary aGk=", "0x1F", "0o17",
    "1_000", "1e400", "-0", "+.inf", "'  '", "\"\\x00\"", "&a [*a]", "*a", "|", ">", "#",
    "{r: 1, r: 2}", "@", "`", "%", "!", "?", "'", "\"", "[", "{", "}", "]", ","])


def yaml_scalar(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


VALUES = st.one_of(
    YAML_WORDS,
    NUMBERS.map(str),
    NUMBERS.map(yaml_scalar),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.lists(st.one_of(NUMBERS, st.text(max_size=4), st.booleans()), max_size=3)
    .map(yaml_scalar),
    st.dictionaries(st.text(max_size=4), st.one_of(NUMBERS, st.text(max_size=4)), max_size=2)
    .map(yaml_scalar),
    st.just(""),
)


def typed_values(annotation: object) -> st.SearchStrategy[str]:
    """Values near what the key takes: its type's extremes, its choices, their neighbours."""
    members = typing.get_args(annotation) or (annotation,)
    options: list[st.SearchStrategy[str]] = [VALUES]
    if any(m in (int, float) for m in members):
        options += [NUMBERS.map(yaml_scalar), NUMBERS.map(yaml_scalar)]
    for member in members:
        if typing.get_origin(member) is typing.Literal:
            choices = [str(c) for c in typing.get_args(member)]
            options += [st.sampled_from(choices), st.sampled_from(choices).map(str.upper),
                        st.sampled_from(choices).map(lambda c: c + " ")]
    if bool in members:
        options.append(st.sampled_from(["true", "false", "True", "1", "0", "on"]))
    if str in members:
        options += [st.text(max_size=16), st.sampled_from(["/", ".", "..", "~", "$HOME", "*"])]
    return st.one_of(options)


TYPED_OVERRIDE = st.sampled_from(sorted(FIELDS)).flatmap(
    lambda key: typed_values(FIELDS[key]).map(lambda value: f"{key}={value}"))
PART = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="=."), max_size=6)
KEY = st.one_of(
    st.sampled_from(KEYS), st.sampled_from(KEYS), st.sampled_from(KEYS),
    st.lists(PART, min_size=1, max_size=3).map(".".join),
    st.sampled_from(KEYS).flatmap(lambda k: st.sampled_from([k + ".x", k.rsplit(".", 1)[0],
                                                            k + ".0", "." + k, k + "."])),
)
OVERRIDE = st.tuples(KEY, VALUES).map(lambda kv: f"{kv[0]}={kv[1]}")
OVERRIDES = st.lists(st.one_of(TYPED_OVERRIDE, TYPED_OVERRIDE, TYPED_OVERRIDE, OVERRIDE,
                               st.text(max_size=10)), min_size=1, max_size=4)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_clean(argv: list[str], code: int, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, f"{argv}: traceback\n{err}"
    assert code in (0, 2), f"{argv}: exit {code}\n{err}"
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("loralab: error: "), f"{argv}: {err!r}"


def with_sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@settings(FUZZ, max_examples=CONFIG_SHOW_EXAMPLES)
@given(OVERRIDES)
def test_config_show_answers_any_override_with_exit_0_or_one_line(items):
    argv = ["config", "show", *with_sets(items)]
    code, out, err = run(argv)
    assert_clean(argv, code, err)
    if code == 0:  # what was accepted is finite, and the printed config loads again as is
        shown = yaml.safe_load(out)
        assert all(math.isfinite(v) for v in numbers(shown)), f"{argv}: {out}"
        assert dump_config(validate_config(shown)) == out, f"{argv}: {out}"


def numbers(node: object) -> list[float]:
    """Every number of an accepted config (all must be finite)."""
    if isinstance(node, dict):
        return [n for v in node.values() for n in numbers(v)]
    if isinstance(node, list):
        return [n for v in node for n in numbers(v)]
    return [node] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


@pytest.fixture(scope="module")
def dry_run_config(tmp_path_factory, tiny_bert) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    train = write_jsonl(root / "train.jsonl", sentiment_rows(24, 0))
    dev = write_jsonl(root / "dev.jsonl", sentiment_rows(8, 1))
    config = root / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"name": str(tiny_bert), "max_length": 32}, "lora": {"r": 4},
        "training": {"epochs": 1, "batch_size": 8},
        "data": {"train": str(train), "validation": str(dev)}}), encoding="utf-8")
    return config, root


@settings(FUZZ, max_examples=DRY_RUN_EXAMPLES)
@given(OVERRIDES)
def test_train_dry_run_answers_any_override_with_exit_0_or_one_line(dry_run_config, items):
    config, root = dry_run_config
    out = root / "never-written"
    argv = ["train", str(config), "--dry-run", "--output", str(out), *with_sets(items)]
    code, stdout, err = run(argv)
    assert_clean(argv, code, err)
    assert not out.exists(), f"{argv}: the dry run wrote {out}"
    if code == 0:
        assert stdout.startswith("dry run: ")


def test_the_fuzzed_keys_are_the_schema():
    assert {"lora.alpha", "training.learning_rate", "data.columns.text", "judge.temperature",
            "training.loss", "adapters"} <= set(KEYS)
