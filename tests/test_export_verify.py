"""`loralab verify` and the export's refusals: a passing table and verify.json, a corrupted weight
caught in a merged and an ONNX export, a plain PEFT adapter as --against, the merged folder
loading with PEFT not importable, and every bad input exiting 2 with one line and nothing
written."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from export_helpers import encoder_adapters, run_cli
from safetensors.torch import load_file, save_file

from loralab.cli import main


@pytest.fixture(scope="module")
def adapter(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("verify-adapters")
    return encoder_adapters(root, tiny_bert, ("sequence_classification",))[
        "sequence_classification"]


@pytest.fixture(scope="module")
def exports(adapter, tmp_path_factory):
    root = tmp_path_factory.mktemp("verify-exports")
    for fmt in ("merged", "onnx", "peft"):
        assert main(["export", str(adapter), "--format", fmt, "--output", str(root / fmt)]) == 0
    return root


def copy_export(exports, fmt, tmp_path):
    import shutil

    return shutil.copytree(exports / fmt, tmp_path / fmt)


@pytest.mark.parametrize("fmt", ["merged", "onnx", "peft"])
def test_verify_prints_the_table_and_writes_verify_json(exports, tmp_path, fmt, capsys):
    folder = copy_export(exports, fmt, tmp_path)
    assert main(["verify", str(folder)]) == 0
    out = capsys.readouterr().out
    runtime = "onnxruntime" if fmt == "onnx" else "torch"
    header, source, export_row = out.splitlines()[:3]
    assert header.split()[:2] == ["runtime", "examples"] and "throughput" in header
    assert source.startswith("torch fp32 (source)") and export_row.startswith(runtime)
    assert "100.00%" in export_row and "ex/s" in export_row
    result = json.loads((folder / "verify.json").read_text())
    assert result["fidelity"]["passed"] and result["runtime"] == runtime
    assert result["same_source_as_export"] is True
    assert result["export_examples_per_second"] > 0
    assert oct((folder / "export.json").stat().st_mode & 0o044) == oct(0o044)  # others read
    assert all(p.stat().st_mode & 0o004 for p in folder.iterdir())


def test_a_perturbed_weight_in_a_merged_export_fails_verify(exports, tmp_path, capsys):
    folder = copy_export(exports, "merged", tmp_path)
    weights = load_file(folder / "model.safetensors")
    key = "bert.encoder.layer.1.intermediate.dense.weight"
    weights[key][0, 0] += 1.0
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    assert main(["verify", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "verify FAILED" in out and "logits differ by more than" in out
    assert json.loads((folder / "verify.json").read_text())["fidelity"]["passed"] is False


def test_a_perturbed_initializer_in_an_onnx_export_fails_verify(exports, tmp_path, capsys):
    import onnx
    from onnx import numpy_helper

    folder = copy_export(exports, "onnx", tmp_path)
    graph = onnx.load(str(folder / "model.onnx"))
    weight = max(graph.graph.initializer, key=lambda t: np.prod(t.dims))
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] += 1.0
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(graph, str(folder / "model.onnx"))
    assert main(["verify", str(folder)]) == 1
    assert "verify FAILED" in capsys.readouterr().out


def test_verify_against_a_plain_peft_adapter_trained_elsewhere(tiny_bert, tmp_path, capsys):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=2,
                                            target_modules=["query", "value"]))
    model.save_pretrained(tmp_path / "plain")
    merged = model.merge_and_unload()  # merged by hand, the way a user elsewhere would
    merged.save_pretrained(tmp_path / "by-hand")
    assert main(["verify", str(tmp_path / "by-hand"), "--against",
                 str(tmp_path / "plain")]) == 0
    assert "verify passed on generated text" in capsys.readouterr().out


def test_merged_folder_loads_with_peft_not_importable(exports, adapter, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exports / "merged")
    texts = ["the movie was good", "a bad and boring film"]
    batch = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    from export_helpers import reference_logits

    expected = reference_logits(adapter, batch)
    script = (
        "import sys, json\n"
        "sys.modules['peft'] = None  # any `import peft` now raises ImportError\n"
        "import torch\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        f"path = {str(exports / 'merged')!r}\n"
        "tok = AutoTokenizer.from_pretrained(path)\n"
        "model = AutoModelForSequenceClassification.from_pretrained(path).eval()\n"
        f"batch = tok({texts!r}, padding=True, return_tensors='pt')\n"
        "with torch.no_grad():\n"
        "    logits = model(**batch).logits\n"
        "assert 'peft' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
        "print(json.dumps({'logits': logits.tolist(), 'labels': model.config.id2label}))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    torch.testing.assert_close(torch.tensor(got["logits"]), expected, atol=1e-4, rtol=1e-4)
    assert got["labels"] == {"0": "neg", "1": "pos"}


# Bad input: each case exits 2 with a one-line `loralab: error: ...`, no traceback, and writes
# nothing (no output folder, no temporary folder beside it, a finished export left as it was).
# {adapter}: a loralab adapter; {merged}: a finished merged export; {empty}: an empty folder;
# {out}: a fresh output path; {busy}: a folder holding other files.
BAD_INPUTS = [
    ("not an adapter folder", ["export", "{empty}", "--format", "merged", "--output", "{out}"],
     "is not an adapter folder (no adapter_config.json)"),
    ("no such adapter folder", ["export", "{empty}/nope", "--format", "merged", "--output",
                                "{out}"], "no such folder"),
    ("unknown format", ["export", "{adapter}", "--format", "tflite", "--output", "{out}"],
     "--format: unknown value 'tflite'; choose peft, merged, onnx"),
    ("unknown dtype", ["export", "{adapter}", "--format", "merged", "--dtype", "int8",
                       "--output", "{out}"], "--dtype: unknown value 'int8'"),
    ("onnx in bf16", ["export", "{adapter}", "--format", "onnx", "--dtype", "bf16", "--output",
                      "{out}"], "no bf16 kernels"),
    ("dtype for peft", ["export", "{adapter}", "--format", "peft", "--dtype", "fp16",
                        "--output", "{out}"], "--dtype is for merged and onnx exports"),
    ("opset too old", ["export", "{adapter}", "--format", "onnx", "--opset", "11", "--output",
                       "{out}"], "--opset is for --format onnx, 18 or newer"),
    ("finished export without --overwrite", ["export", "{adapter}", "--format", "merged",
                                             "--output", "{merged}"],
     "already holds a finished export (export.json); choose another folder or pass "
     "--overwrite"),
    ("output holds other files", ["export", "{adapter}", "--format", "merged", "--output",
                                  "{busy}"], "holds other files (it is not an export)"),
    ("output is the adapter", ["export", "{adapter}", "--format", "merged", "--output",
                               "{adapter}"], "would replace the adapter folder itself"),
    ("missing inputs file", ["export", "{adapter}", "--format", "merged", "--inputs",
                             "{empty}/none.txt", "--output", "{out}"], "file not found"),
    ("bad atol", ["export", "{adapter}", "--format", "merged", "--atol", "-1", "--output",
                  "{out}"], "--atol must be a positive number"),
    ("verify: not an export folder", ["verify", "{empty}"], "is not an export folder"),
    ("verify: runtime of another format", ["verify", "{merged}", "--runtime", "onnxruntime"],
     "a merged export runs on torch"),
    ("verify: unknown runtime", ["verify", "{merged}", "--runtime", "tensorrt"],
     "--runtime: unknown value 'tensorrt'"),
    ("verify: --against not an adapter", ["verify", "{merged}", "--against", "{empty}"],
     "is not an adapter folder"),
]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, adapter, exports, tmp_path,
                                                            capsys):
    _, args, message = case
    (tmp_path / "empty").mkdir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    merged = copy_export(exports, "merged", tmp_path)
    places = {"adapter": adapter, "merged": merged, "empty": tmp_path / "empty",
              "out": tmp_path / "out", "busy": tmp_path / "busy"}
    before = {name: snapshot(places[name]) for name in ("adapter", "merged", "busy")}
    argv = [a.format(**places) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("loralab: error: "), err
    assert message in err
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".*.tmp")) and not list(adapter.parent.glob(".*.tmp"))
    assert {name: snapshot(places[name]) for name in before} == before
    assert not any((tmp_path / "empty").iterdir())


def test_bad_input_in_a_real_process_prints_no_traceback(adapter, tmp_path):
    result = run_cli("export", adapter, "--format", "tflite", "--output", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "loralab: error: --format: unknown value 'tflite'; choose peft, merged, onnx"]


@pytest.mark.parametrize("hidden", ["onnx", "onnxruntime"])
def test_missing_onnx_names_the_extra(adapter, exports, tmp_path, hidden):
    script = (f"import sys\nsys.modules[{hidden!r}] = None\n"
              "from loralab.cli import main\nraise SystemExit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for argv in (["export", str(adapter), "--format", "onnx", "--output", str(tmp_path / "o")],
                 ["verify", str(exports / "onnx")]):
        result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                                text=True, timeout=300, env=env)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        missing = lines[0].split(" needs ", 1)[1].split(" (not installed)")[0].split(", ")
        assert hidden in missing and lines[0].endswith("pip install 'loralab[export]'")
    assert not (tmp_path / "o").exists()
    assert not (exports / "onnx" / "verify.json").exists()
