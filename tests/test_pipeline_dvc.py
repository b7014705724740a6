"""examples/bilora as a real DVC pipeline in a temporary git repository: `dvc repro` runs every
stage; again, every stage is skipped; a changed benchmark parameter re-runs only the stages
downstream of it (benchmark, gate, publish); `dvc params diff` / `dvc metrics diff` report the
change; a failing gate stops the pipeline before publish. For speed the params point at the
tiny random Llama and tiny MBPP-shaped data (the shipped smoke params use SmolLM2 and MBPP)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import write_mbpp

pytest.importorskip("dvc")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bilora"
STAGES = ["prepare", "split", "train", "benchmark", "gate", "publish"]


def run(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exit {result.returncode}\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


def ran(output: str) -> list[str]:
    return [s for s in STAGES if re.search(rf"Running stage '{s}'", output)]


def skipped(output: str) -> list[str]:
    return [s for s in STAGES if re.search(rf"Stage '{s}' didn't change, skipping", output)]


def set_key(params: Path, path: list[str], value) -> None:
    raw = yaml.safe_load(params.read_text())
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    params.write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture
def repo(tmp_path, tiny_llama):
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml", "run.sh", ".gitignore"):
        shutil.copy(EXAMPLE / name, root / name)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["profile"] = "smoke"
    train = raw["train"]
    train["model"]["name"] = str(tiny_llama)
    train["data"]["train"] = str(write_mbpp(tmp_path / "mbpp.jsonl"))
    train["data"].pop("chat_template")
    for adapter in train["adapters"]:
        adapter["lora"].update(r=4, alpha=8)
    raw["profiles"]["smoke"]["train"].update({"model.max_length": 96, "training.batch_size": 8,
                                              "training.learning_rate": 1e-2})
    raw["profiles"]["smoke"]["benchmark"]["eval.max_new_tokens"] = 12
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1"}
    run(["git", "init", "-q"], root, env)
    run([sys.executable, "-m", "dvc", "init", "-q"], root, env)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], root, env)
    return root, env


def dvc(root: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], root, env, check=check)


def commit(root: Path, env: dict, message: str) -> None:
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", message], root, env)


def versions(root: Path) -> list[str]:
    models = root / "models"
    return sorted(p.name for p in models.iterdir() if p.is_dir()) if models.is_dir() else []


@pytest.mark.integration
def test_dvc_repro_skips_reruns_downstream_and_stops_at_a_failed_gate(repo):
    root, env = repo
    first = dvc(root, env, "repro")
    assert ran(first.stdout) == STAGES, first.stdout[-3000:]
    bench = json.loads((root / "runs" / "bench" / "metrics.json").read_text())
    assert {"code.test.pass@1", "base.code.test.pass@1", "docstring.test.rougeL",
            "base.docstring.test.bleu"} <= set(bench)
    assert json.loads((root / "baselines" / "bilora.json").read_text())["kind"] == \
        "loralab.baseline"
    assert versions(root) == ["bilora-v1"]
    manifest = json.loads((root / "models" / "bilora-v1" / "manifest.json").read_text())
    assert [a["name"] for a in manifest["adapters"]] == ["code", "docstring"]
    assert manifest["gate"]["verdict"] == "pass"
    commit(root, env, "first run")

    again = dvc(root, env, "repro")
    assert skipped(again.stdout) == STAGES and not ran(again.stdout), again.stdout[-2000:]

    set_key(root / "params.yaml", ["profiles", "smoke", "benchmark", "eval.max_new_tokens"], 8)
    diff = dvc(root, env, "params", "diff").stdout
    assert "eval.max_new_tokens" in diff and "12" in diff and "8" in diff, diff
    third = dvc(root, env, "repro")
    assert ran(third.stdout) == ["benchmark", "gate", "publish"], third.stdout[-3000:]
    assert skipped(third.stdout) == ["prepare", "split", "train"]
    assert versions(root) == ["bilora-v1", "bilora-v2"]
    metrics_diff = dvc(root, env, "metrics", "diff").stdout
    assert "runs/bench/metrics.json" in metrics_diff, metrics_diff
    commit(root, env, "shorter answers")

    set_key(root / "params.yaml", ["profiles", "smoke", "gate"],
            ["code.test.pass@1 >= 0.99", "docstring.test.rougeL >= base - 0.5"])
    failed = dvc(root, env, "repro", check=False)
    assert failed.returncode != 0
    assert "gate: FAIL, 1 of 2 rules failed (code.test.pass@1 >= 0.99)" in failed.stdout
    assert "Running stage 'publish'" not in failed.stdout
    assert versions(root) == ["bilora-v1", "bilora-v2"]
    assert json.loads((root / "runs" / "gate" / "gate.json").read_text())["verdict"] == "fail"
