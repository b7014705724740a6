"""Job 5's pipeline (examples/bilora) under DVC: wall time per stage, then the benchmark table.

Run (offline, from the repository root):

    HF_HUB_OFFLINE=1 python benchmarks/pipeline.py --profile smoke --workdir bench_out/pipeline
    HF_HUB_OFFLINE=1 python benchmarks/pipeline.py --profile cpu --workdir bench_out/pipeline

Copies examples/bilora into WORKDIR/repo (a fresh git + DVC repository), points its MBPP path
at ../shared/data, selects --profile, and runs `dvc repro --single-item STAGE` for each stage in
order, timing each command; then `dvc repro` once more, which must skip every stage. Prints the
per-stage wall times and, from runs/bench/metrics.json, the base model next to each adapter on
the same test examples: pass@1 (code adapter, in the sandbox), BLEU and ROUGE-L (docstring
adapter). The plain path here is the base model itself: `--baseline` evaluates it with the
same prompts and decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bilora"
MBPP = ROOT.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl"
STAGES = ["prepare", "split", "train", "benchmark", "gate", "publish"]


def make_repo(work: Path, profile: str, model: str | None) -> tuple[Path, dict[str, str]]:
    repo = work / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", "run.sh", ".gitignore"):
        shutil.copy(EXAMPLE / name, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    if profile not in params["profiles"]:
        raise SystemExit(f"--profile {profile}: params.yaml has {', '.join(params['profiles'])}")
    params["profile"] = profile
    params["train"]["data"]["train"] = str(MBPP)
    if model:
        params["train"]["model"]["name"] = model
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "GIT_AUTHOR_NAME": "bench",
           "GIT_AUTHOR_EMAIL": "bench@localhost", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@localhost"}
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"],
                [sys.executable, "-m", "dvc", "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True)
    return repo, env


def dvc(repo: Path, env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env,
                            capture_output=True, text=True)
    return time.perf_counter() - start, result


def metric_table(bench: dict[str, float]) -> list[str]:
    def cell(key: str) -> str:
        return f"{bench[key]:.3f}" if key in bench else "-"

    lines = [f"{'model':<22}{'pass@1 (code)':>15}{'BLEU (doc)':>12}{'ROUGE-L (doc)':>15}"]
    for label, code, doc in (("base model", "base.code", "base.docstring"),
                             ("code adapter", "code", None), ("docstring adapter", None,
                                                              "docstring")):
        lines.append(f"{label:<22}{cell(f'{code}.test.pass@1') if code else '-':>15}"
                     f"{cell(f'{doc}.test.bleu') if doc else '-':>12}"
                     f"{cell(f'{doc}.test.rougeL') if doc else '-':>15}")
    examples = {k: int(v) for k, v in bench.items() if k.endswith(".test.examples")}
    if examples:
        lines.append("examples per model: " + ", ".join(f"{k.removesuffix('.test.examples')} "
                                                         f"{v}" for k, v in examples.items()))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="smoke", help="a profile of params.yaml")
    parser.add_argument("--workdir", default="bench_out/pipeline")
    parser.add_argument("--model", help="another base (e.g. Qwen/Qwen2.5-Coder-0.5B-Instruct)")
    args = parser.parse_args()
    if not MBPP.is_file():
        raise SystemExit(f"needs {MBPP} (../shared/data beside the checkout)")
    repo, env = make_repo(Path(args.workdir).resolve(), args.profile, args.model)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; python {platform.python_version()}")
    print(f"examples/bilora, profile {args.profile}, base "
          f"{yaml.safe_load((repo / 'params.yaml').read_text())['train']['model']['name']}")
    times: dict[str, float] = {}
    for stage in STAGES:
        seconds, result = dvc(repo, env, "repro", "--single-item", stage)
        times[stage] = seconds
        print(f"  {stage:<10} {seconds:8.1f} s   exit {result.returncode}", flush=True)
        if result.returncode != 0 and stage == "gate":   # a verdict: publish does not run
            print("  the gate failed: publish skipped")
            break
        if result.returncode != 0:
            print(result.stdout[-2000:] + result.stderr[-2000:])
            return 1
    again, result = dvc(repo, env, "repro")
    skipped = re.findall(r"Stage '(\w+)' didn't change, skipping", result.stdout)
    print(f"  {'total':<10} {sum(times.values()):8.1f} s")
    print(f"  dvc repro again: {again:.1f} s, skipped {len(skipped)} of {len(STAGES)} stages"
          f" (exit {result.returncode})")
    bench = json.loads((repo / "runs" / "bench" / "metrics.json").read_text())
    gate = json.loads((repo / "runs" / "gate" / "gate.json").read_text())
    print("\n".join(metric_table(bench)))
    print(f"gate: {gate['verdict']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
