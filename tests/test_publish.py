"""`loralab publish`: versioned copies that never overwrite, atomic (no half folder after a
failure), a manifest whose sha256 match the files, a real PEFT adapter still loading from the
published copy, and the hub refused without a token."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from gate_helpers import RUN_METRICS, cli_env, run_cli, tree, write_json

from loralab.cli import main
from loralab.export.publish import MANIFEST


def fake_adapter(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True)
    write_json(folder / "adapter_config.json", {
        "peft_type": "LORA", "r": 8, "lora_alpha": 16, "base_model_name_or_path": "tiny",
        "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"})
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(2048 + seed))
    write_json(folder / "label_mapping.json", {"task": "causal_lm", "labels": None})
    return folder


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = tmp_path / "runs" / "bilora"
    fake_adapter(run / "lora_code_llama_r8", 1)
    fake_adapter(run / "lora_docstring_llama_r8", 2)
    write_json(run / "metrics.json", {**RUN_METRICS, "name": "bilora"})
    (run / "diagnostics.jsonl").write_text("{}\n")
    return run


def publish(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["publish", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_single_adapter_versions_never_overwrite(tmp_path, run_dir, capsys):
    adapter = run_dir / "lora_code_llama_r8"
    models = tmp_path / "models"
    code, out, _ = publish(capsys, adapter, "--to", models)
    assert code == 0 and "as lora_code_llama_r8-v1" in out
    v1 = models / "lora_code_llama_r8-v1"
    assert sorted(p.name for p in v1.iterdir()) == ["adapter_config.json",
                                                   "adapter_model.safetensors",
                                                   "label_mapping.json", MANIFEST]
    before = tree(v1)
    (adapter / "adapter_model.safetensors").write_bytes(b"retrained")
    assert publish(capsys, adapter, "--to", models)[0] == 0
    assert publish(capsys, adapter, "--to", models, "--name", "code")[0] == 0
    assert sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) == [
        "code-v1", "lora_code_llama_r8-v1", "lora_code_llama_r8-v2"]
    assert tree(v1) == before                      # the old version is untouched
    assert (models / "lora_code_llama_r8-v2" / "adapter_model.safetensors").read_bytes() == \
        b"retrained"
    manifest = json.loads((models / "lora_code_llama_r8-v2" / MANIFEST).read_text())
    assert (manifest["name"], manifest["version"]) == ("lora_code_llama_r8", 2)
    assert manifest["source"]["run"]["name"] == "bilora"           # the parent run folder
    assert manifest["metrics"]["validation.f1_binary"] == 0.85


def test_run_folder_with_two_adapters_and_the_manifest(tmp_path, run_dir, capsys):
    models = tmp_path / "models"
    code, out, _ = publish(capsys, run_dir, "--to", models)
    assert code == 0 and "published 2 adapter(s) as bilora-v1" in out
    version = models / "bilora-v1"
    assert sorted(p.name for p in version.iterdir()) == [
        "lora_code_llama_r8", "lora_docstring_llama_r8", MANIFEST]
    assert not (version / "metrics.json").exists()      # adapters only, the run stays apart
    manifest = json.loads((version / MANIFEST).read_text())
    assert manifest["published_as"] == "bilora-v1" and manifest["loralab_version"]
    assert manifest["source"]["path"] == str(run_dir)
    assert manifest["source"]["run"]["metrics_file"] == str(run_dir / "metrics.json")
    assert [a["name"] for a in manifest["adapters"]] == ["lora_code_llama_r8",
                                                         "lora_docstring_llama_r8"]
    code_adapter = manifest["adapters"][0]
    assert (code_adapter["task"], code_adapter["r"], code_adapter["target_modules"]) == (
        "causal_lm", 8, ["q_proj", "v_proj"])
    assert code_adapter["weights"] == ["lora_code_llama_r8/adapter_model.safetensors"]
    files = {str(p.relative_to(version)) for p in version.rglob("*")
             if p.is_file() and p.name != MANIFEST}
    assert set(manifest["files"]) == files
    for rel, digest in manifest["files"].items():
        assert digest == sha256(version / rel)
        assert digest == sha256(run_dir / rel)        # the copy is the source, byte for byte
    assert manifest["gate"] is None


def test_gate_result_goes_into_the_manifest(tmp_path, run_dir, capsys):
    results = write_json(tmp_path / "bench.json", {"code": {"pass@1": 0.4}})
    assert main(["gate", str(results), "--baseline", str(tmp_path / "b.json"),
                 "--rule", "code.pass@1 >= 0.3"]) == 0
    gate_file = tmp_path / "gate.json"
    assert publish(capsys, run_dir, "--to", tmp_path / "models", "--gate", gate_file)[0] == 0
    manifest = json.loads((tmp_path / "models" / "bilora-v1" / MANIFEST).read_text())
    assert manifest["gate"]["verdict"] == "pass"
    assert manifest["gate"]["sha256"] == sha256(gate_file)
    assert manifest["gate"]["rules"][0]["rule"] == "code.pass@1 >= 0.3"


def test_a_failing_copy_leaves_no_half_folder(tmp_path, run_dir, capsys):
    (run_dir / "lora_docstring_llama_r8" / "tokenizer.json").symlink_to(tmp_path / "gone")
    models = tmp_path / "models"
    code, _, err = publish(capsys, run_dir, "--to", models)
    assert code == 2 and err.startswith("loralab: error: cannot copy adapter ")
    assert "lora_docstring_llama_r8" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in models.iterdir()] == [".publish.lock"]   # no version, no temp


def test_hub_refused_without_a_token(tmp_path, run_dir):
    """The real command with no HF_TOKEN and an empty HF_HOME: exit 2, one line, nothing
    uploaded (no staging left behind either)."""
    env = cli_env(HF_HOME=str(tmp_path / "hf-home"), TMPDIR=str(tmp_path / "tmp"))
    env.pop("HF_TOKEN", None)
    (tmp_path / "tmp").mkdir()
    done = run_cli("publish", run_dir, "--to", "hf:someone/bilora", env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "loralab: error: publishing to the Hugging Face Hub needs a token: set HF_TOKEN or "
        "run `hf auth login`; nothing was uploaded"]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert list((tmp_path / "tmp").iterdir()) == []
    # a token but no network allowed: refused the same way, before anything is staged
    offline = run_cli("publish", run_dir, "--to", "hf:someone/bilora",
                      env={**env, "HF_TOKEN": "hf_test", "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2
    assert offline.stderr.strip().splitlines() == [
        "loralab: error: HF_HUB_OFFLINE is set: unset it to upload to the Hugging Face Hub; "
        "nothing was uploaded"]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_published_peft_adapter_loads_and_answers_the_same(tmp_path, tiny_llama, capsys):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False))
    model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    assert publish(capsys, tmp_path / "adapter", "--to", tmp_path / "models")[0] == 0
    published = tmp_path / "models" / "adapter-v1"
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama),
                                       published).eval()
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, expected)
    manifest = json.loads((published / MANIFEST).read_text())
    assert manifest["adapters"][0]["weights"] == ["adapter_model.safetensors"]
    assert manifest["files"]["adapter_model.safetensors"] == sha256(
        tmp_path / "adapter" / "adapter_model.safetensors")


# ---------------------------------------------------------------- bad inputs
# (case id, setup(tmp, run) -> argv, message parts): exit 2, one line naming the file or
# argument, no traceback, nothing written.

def failed_gate(tmp: Path, run: Path) -> list[str]:
    write_json(tmp / "gate.json", {"verdict": "fail", "rules_failed": 1, "rules": []})
    return ["publish", str(run), "--to", str(tmp / "models"), "--gate", str(tmp / "gate.json")]


def failed_gate_summary(tmp: Path, run: Path) -> list[str]:
    """A gate record without counts (the short form a baseline keeps): counted from its rules."""
    write_json(tmp / "gate.json", {"verdict": "fail", "rules": [
        {"rule": "a >= 1", "result": "fail"}, {"rule": "b >= 0", "result": "pass"}]})
    return ["publish", str(run), "--to", str(tmp / "models"), "--gate", str(tmp / "gate.json")]


def to_a_file(tmp: Path, run: Path) -> list[str]:
    (tmp / "models.txt").write_text("x")
    return ["publish", str(run), "--to", str(tmp / "models.txt")]


BAD_INPUTS = [
    ("adapter folder missing", lambda t, r: ["publish", str(t / "nope"), "--to", str(t / "m")],
     ["adapter folder", "nope does not exist"]),
    ("no adapter inside", lambda t, r: ["publish", str(t), "--to", str(t / "m")],
     ["holds no adapter (no adapter_config.json in it or its sub-folders)"]),
    ("failed gate", failed_gate, ["gate.json records a failed gate (1 rule failed)"]),
    ("failed gate summary", failed_gate_summary,
     ["gate.json records a failed gate (1 of 2 rules failed)"]),
    ("not a gate file", lambda t, r: ["publish", str(r), "--to", str(t / "m"), "--gate",
                                      str(r / "metrics.json")],
     ["metrics.json is not a gate.json written by `loralab gate`"]),
    ("gate file missing", lambda t, r: ["publish", str(r), "--to", str(t / "m"), "--gate",
                                        str(t / "gate.json")], ["gate.json does not exist"]),
    ("bad name", lambda t, r: ["publish", str(r), "--to", str(t / "m"), "--name", "../x"],
     ["--name '../x': use letters, digits"]),
    ("models folder is a file", to_a_file, ["models.txt is a file, not a models folder"]),
    ("bad hub repo id", lambda t, r: ["publish", str(r), "--to", "hf:just-a-name"],
     ["--to hf:just-a-name: expected hf:OWNER/NAME"]),
]


@pytest.mark.parametrize(("setup", "parts"), [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs(tmp_path, run_dir, capsys, setup, parts):
    argv = setup(tmp_path, run_dir)
    before = tree(tmp_path)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for part in parts:
        assert part in err
    assert tree(tmp_path) == before
