"""eval.constrain through the commands, on a tiny random Llama: training-time generation,
`loralab eval --baseline` (base model and adapter under the same grammar), `loralab predict
--constrain / --schema`, and bad input (one line naming the key, exit 2, nothing written),
a missing engine included (a real process in which llguidance cannot be imported)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from loralab.cli import main

from conftest import intent_rows, write_jsonl

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llguidance") is None,
                                reason="needs the grammar engine: pip install "
                                       "'loralab[structured]' (scripts/install.sh does it)")

SCHEMA = {"type": "object", "required": ["intent", "entities"], "additionalProperties": False,
          "properties": {"intent": {"enum": ["book_flight", "order_food", "set_reminder"]},
                         "entities": {"type": "object", "maxProperties": 2,
                                      "additionalProperties": {"type": "string",
                                                               "maxLength": 8}}}}
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_llama):
    """A config (constrained to SCHEMA, eval.generate on) and the adapter it trains."""
    from loralab.config import load_config
    from loralab.training.recipe import train

    tmp = tmp_path_factory.mktemp("constrained")
    schema = tmp / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    raw = {"name": "intent", "model": {"name": str(tiny_llama), "task": "causal_lm",
                                       "max_length": 160},
           "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
           "training": {"max_steps": 2, "batch_size": 8, "learning_rate": 1e-2,
                        "warmup": 0, "eval_strategy": "no"},
           "data": {"train": str(write_jsonl(tmp / "train.jsonl", intent_rows(16, 0))),
                    "validation": str(write_jsonl(tmp / "dev.jsonl", intent_rows(6, 1))),
                    "prompt_template": "{message} -> ", "response_template": "{output}",
                    "metrics": ["json"], "schema_file": str(schema)},
           "eval": {"generate": True, "constrain": "json_schema", "max_samples": 3,
                    "max_new_tokens": 120, "batch_size": 3}}
    config_file = tmp / "config.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    metrics = train(load_config(str(config_file)), tmp / "run", progress=False)
    return {"tmp": tmp, "config": config_file, "schema": schema, "metrics": metrics,
            "adapter": tmp / "run" / metrics["adapter"], "model": tiny_llama}


def check_answers(lines, schema=SCHEMA):
    """Every constrained answer that ended (EOS) is a document of `schema`."""
    assert lines and all("complete" in line for line in lines)
    for line in lines:
        if line["complete"]:
            jsonschema.validate(json.loads(line["generated"]), schema)
    return sum(line["complete"] for line in lines)


def test_training_time_generation_is_constrained(env):
    best = env["metrics"]["best"]
    assert best["generated"] == 3 and "truncated" in best and "schema_compliance" in best
    assert best["schema_compliance"] == (3 - best["truncated"]) / 3  # ended = compliant


def test_eval_baseline_decodes_base_and_adapter_under_the_same_grammar(env, tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", str(env["adapter"]), "--baseline", "--output", str(out),
                 "--no-progress", "--set", "data.max_eval_samples=3"]) == 0
    lora = json.loads((out / "lora_results.json").read_text())
    base = json.loads((out / "baseline_results.json").read_text())
    assert lora["decoding"] == base["decoding"] and lora["decoding"]["constrain"] == "json_schema"
    for name, result in (("lora", lora), ("baseline", base)):
        lines = [json.loads(x) for x in (out / f"{name}_generations.jsonl").read_text()
                 .splitlines()]
        ended = check_answers(lines)
        assert result["truncated"] == 3 - ended
        assert result["schema_compliance"] == result["valid_json"] == ended / 3


def test_predict_constrain_and_schema_flags(env, capsys):
    texts = ["order sushi", "a flight to paris"]
    argv = ["predict", str(env["adapter"]), *(x for t in texts for x in ("--text", t))]
    assert main(argv) == 0  # the adapter's own eval.constrain: its schema
    check_answers([json.loads(x) for x in capsys.readouterr().out.splitlines()])
    assert main([*argv, "--constrain", "json"]) == 0
    check_answers([json.loads(x) for x in capsys.readouterr().out.splitlines()],
                  {"type": "object"})
    assert main([*argv, "--constrain", "none"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and not any("complete" in line for line in lines)


# --------------------------------------------------------------------------- bad input
def bad_schema_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.json"
    path.write_text(text)
    return str(path)


NOT_A_UNION = json.dumps({"type": "object", "if": {"required": ["a"]},
                          "then": {"required": ["b"]}})
BAD_SCHEMAS = {
    "not JSON": ("{intent: x", r"data\.schema_file: .*bad\.json is not JSON \(Expecting"),
    "not a JSON Schema": ('{"type": "strin"}', r"data\.schema_file: .*bad\.json is not a "
                                                r"JSON Schema: 'strin' is not valid"),
    "engine refuses": (NOT_A_UNION, r"data\.schema_file: .*bad\.json: the grammar engine "
                                    r"\(llguidance\) cannot constrain decoding to this "
                                    r'schema: Unimplemented keys: \["if"'),
}


def refused(capsys, argv: list[str], expect: str, untouched: Path) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(expect, err), err
    assert not untouched.exists()


@pytest.mark.parametrize("case", list(BAD_SCHEMAS))
def test_a_bad_schema_file_is_one_line_exit_2_and_nothing_written(env, tmp_path, capsys, case):
    text, expect = BAD_SCHEMAS[case]
    schema = bad_schema_file(tmp_path, text)
    out = tmp_path / "out"
    sets = ["--set", f"data.schema_file={schema}"]
    refused(capsys, ["eval", str(env["adapter"]), "--output", str(out), *sets], expect, out)
    refused(capsys, ["eval", "--model", str(env["model"]), "--config", str(env["config"]),
                     "--output", str(out), *sets], expect, out)
    refused(capsys, ["train", str(env["config"]), "--output", str(out), "--no-progress",
                     *sets], expect, out)
    refused(capsys, ["predict", str(env["adapter"]), "--text", "x", "--schema", schema],
            expect, out)


def test_constrain_json_schema_without_a_schema_file_names_both_keys(env, tmp_path, capsys):
    out = tmp_path / "out"
    expect = r"eval\.constrain=json_schema needs data\.schema_file"
    refused(capsys, ["train", str(env["config"]), "--output", str(out), "--set",
                     "data.schema_file=null"], expect, out)
    refused(capsys, ["eval", str(env["adapter"]), "--output", str(out), "--set",
                     "data.schema_file=null"], expect, out)
    refused(capsys, ["eval", str(env["adapter"]), "--output", str(out), "--set",
                     "eval.constrain=yaml"], r"eval\.constrain: .*'json' or 'json_schema'",
            out)


def test_a_missing_engine_is_one_line_naming_the_extra(env, tmp_path):
    """A real process whose llguidance cannot be imported (a package of that name that
    raises ImportError shadows the installed one)."""
    shadow = tmp_path / "shadow" / "llguidance"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('llguidance is not installed')\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "loralab.cli", "eval", str(env["adapter"]), "--output",
         str(out), "--no-progress"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": f"{shadow.parent}{os.pathsep}{SRC}"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["loralab: error: eval.constrain: constrained decoding needs the grammar "
                     "engine llguidance: pip install 'loralab[structured]'"]
    assert not out.exists()
