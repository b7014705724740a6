"""`loralab gate --promote`: a pass replaces the baseline and keeps the old one in the
history, a fail never touches it, and a process killed during promotion (SIGKILL, real
subprocesses) leaves a whole baseline behind."""

from __future__ import annotations

import json
import random
import select
import signal
import subprocess
import sys
import time

from gate_helpers import bench, cli_env, gate, write_json

from loralab.evaluation.gate.baseline import PAUSE_ENV, history_path

RULES = ("--rule", "code.pass@1 >= baseline - 0.02", "--rule", "code.pass@1 >= 0.3")


def test_promote_on_pass_replaces_the_baseline_and_appends_history(tmp_path, capsys):
    baseline = tmp_path / "baselines" / "bilora.json"
    first = write_json(tmp_path / "r1" / "bench.json", bench(0.34))
    assert gate(capsys, first, "--baseline", baseline, *RULES, "--promote")[0] == 0
    assert not history_path(baseline).exists()
    stored_first = json.loads(baseline.read_text())

    second = write_json(tmp_path / "r2" / "bench.json", bench(0.33))
    code, out, _ = gate(capsys, second, "--baseline", baseline, *RULES, "--promote")
    assert code == 0
    assert "the new baseline (the old one is in bilora.history.jsonl)" in out
    stored = json.loads(baseline.read_text())
    assert stored["metrics"]["code.pass@1"] == 0.33
    assert stored["source"][0]["path"] == str(second)
    assert stored["gate"]["verdict"] == "pass"
    assert [r["rule"] for r in stored["gate"]["rules"]] == ["code.pass@1 >= baseline - 0.02",
                                                           "code.pass@1 >= 0.3"]
    history = history_path(baseline)
    assert history == tmp_path / "baselines" / "bilora.history.jsonl"
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["baseline"] == stored_first
    assert lines[0]["replaced_by"][0]["path"] == str(second)
    assert lines[0]["gate"]["verdict"] == "pass" and lines[0]["replaced_at"]
    assert json.loads((tmp_path / "r2" / "gate.json").read_text())["baseline"]["promoted"]

    third = write_json(tmp_path / "r3" / "bench.json", bench(0.36))
    assert gate(capsys, third, "--baseline", baseline, *RULES, "--promote")[0] == 0
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert [line["baseline"]["metrics"]["code.pass@1"] for line in lines] == [0.34, 0.33]


def test_a_failed_gate_never_touches_the_baseline(tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    assert gate(capsys, write_json(tmp_path / "a.json", bench(0.34)), "--baseline", baseline,
                *RULES, "--promote")[0] == 0
    before = (baseline.read_bytes(), baseline.stat().st_mtime_ns)
    code, out, _ = gate(capsys, write_json(tmp_path / "b.json", bench(0.31)), "--baseline",
                        baseline, *RULES, "--promote")
    assert code == 1
    assert f"gate: not promoted: the gate failed, {baseline} is unchanged" in out
    assert (baseline.read_bytes(), baseline.stat().st_mtime_ns) == before
    assert not history_path(baseline).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "baseline.json",
                                                          "gate.json"]


def wait_for_line(stream, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.5)
        if ready:
            line = stream.readline()
            seen += line
            if text in line:
                return seen
            if not line:
                break
    raise AssertionError(f"{text!r} never came; got {seen!r}")


def test_kill_during_promote_leaves_the_old_baseline(tmp_path, capsys):
    """The real command, paused by the test hook between the history append and the
    baseline replacement, then SIGKILLed."""
    baseline = tmp_path / "baseline.json"
    assert gate(capsys, write_json(tmp_path / "a.json", bench(0.34)), "--baseline", baseline,
                *RULES, "--promote")[0] == 0
    old = baseline.read_bytes()
    newer = write_json(tmp_path / "b.json", bench(0.35))
    child = subprocess.Popen(
        [sys.executable, "-m", "loralab", "gate", str(newer), "--baseline", str(baseline),
         *RULES, "--promote"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=cli_env(**{PAUSE_ENV: "60"}))
    try:
        wait_for_line(child.stderr, "promote: paused", timeout=60)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert baseline.read_bytes() == old
    line, = history_path(baseline).read_text().splitlines()
    assert json.loads(line)["baseline"] == json.loads(old)
    assert not list(tmp_path.glob(".*.tmp"))
    # the next run reads the intact baseline and promotes normally
    code, _, _ = gate(capsys, newer, "--baseline", baseline, *RULES, "--promote")
    assert code == 0 and json.loads(baseline.read_text())["metrics"]["code.pass@1"] == 0.35


PROMOTE_LOOP = """
import sys
from pathlib import Path
from loralab.evaluation.gate.baseline import promote
from loralab.evaluation.gate.results import load_results
baseline, results = Path(sys.argv[1]), [load_results(p) for p in sys.argv[2:]]
for i in range(100000):
    promote(baseline, results[i % 2], {"verdict": "pass", "i": i})
    if i == 0:
        print("ready", flush=True)
"""


def test_sigkill_at_random_points_of_promotion_never_leaves_a_broken_baseline(tmp_path):
    """A child promotes two results in turn as fast as it can; it is killed at a random
    moment, twelve times. Each time the baseline is one whole result and every history line
    is whole JSON."""
    rng = random.Random(0)
    results = [write_json(tmp_path / f"r{i}.json", bench(0.3 + i / 10)) for i in range(2)]
    values = {0.3, 0.4}
    baseline = tmp_path / "base" / "baseline.json"
    kills_mid_run = 0
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-c", PROMOTE_LOOP, str(baseline),
                                  *map(str, results)], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, env=cli_env())
        try:
            wait_for_line(child.stdout, "ready", timeout=60)
            time.sleep(rng.uniform(0.0, 0.3))
            kills_mid_run += child.poll() is None
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            child.kill()
            child.stdout.close()
        stored = json.loads(baseline.read_text())
        assert stored["kind"] == "loralab.baseline"
        assert stored["metrics"]["code.pass@1"] in values
        for line in history_path(baseline).read_text().splitlines():
            assert json.loads(line)["baseline"]["metrics"]["code.pass@1"] in values
    assert kills_mid_run == 12
