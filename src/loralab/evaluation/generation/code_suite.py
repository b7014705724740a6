"""Code-generation metric: pass@1 by running the task's asserts against the generated code.

Reference per example (MBPP's fields): {"test_list": [assert statements],
"test_setup_code": optional str, "test_imports": optional [import statements]}.

Each example runs in its own throw-away folder (the child's working directory, HOME and
TMPDIR) as `python -I` (isolated mode) with a minimal environment and these limits:
    wall clock   `timeout_s` (default 10 s); on expiry the whole process group is killed;
    CPU time     RLIMIT_CPU = ceil(timeout_s) + 1 s;
    memory       RLIMIT_AS = `memory_bytes` (default 1 GiB), so large allocations raise
                 MemoryError;
    file size    RLIMIT_FSIZE = `max_file_bytes` (default 16 MiB, output files included);
    network      `unshare -n` (an empty network namespace) where the host allows it, checked
                 at run time; always also a prelude that makes socket constructors raise;
    writes       a prelude that makes open-for-writing, os.open with write flags, remove,
                 rename, rmdir, mkdir, chmod, link, truncate, shutil.rmtree / move refuse
                 paths outside the folder (symlinks resolved), and that refuses to start
                 processes (os.system, subprocess, fork, exec, spawn) or send signals.

The prelude is a best-effort guard against accidents in model-written code, NOT a security
boundary: code that wants to can undo it (ctypes, reloading modules, reaching the original
functions through the interpreter). It does not cover reads (any readable file can be read),
CPU use of threads before the CPU limit, disk use inside the folder up to the file-size
limit, or children that a solution starts by means the prelude misses. Run untrusted code
in a container or VM.

Outcomes per example: "passed", "failed" (a test assert was false), "error" (no code, a
syntax error, an exception, a memory or output limit, or an exit before the tests finished)
and "timeout" (wall-clock or CPU limit). Metrics: n, pass@1 (fraction), and the counts
code_timeouts, code_errors, code_failures.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.evaluation.generation.code_sandbox_child import runner_source

_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_TAIL_BYTES = 2000
_EXIT_FAILED, _EXIT_ERROR = 3, 4


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0
    memory_bytes: int = 1 << 30
    max_file_bytes: int = 16 << 20
    use_unshare: bool = True


@dataclass(frozen=True)
class ExecutionResult:
    status: str  # passed | failed | error | timeout
    detail: str
    duration_s: float
    pid: int | None = None


def extract_code(text: str) -> str:
    """The first ```python block (an unclosed one runs to the end), else the first bare ```
    block, else the whole text."""
    blocks = _FENCE.findall(text)
    python = [body for language, body in blocks if language]
    if python:
        return python[0]
    return blocks[0][1] if blocks else text


def run_tests(code: str, reference: Mapping[str, Any],
              limits: SandboxLimits | None = None) -> ExecutionResult:
    """Run MBPP-style `reference` tests against `code` in a sandboxed child process."""
    limits = limits or SandboxLimits()
    tests = list(reference.get("test_list") or ())
    if not code.strip():
        return ExecutionResult("error", "no code in the output", 0.0)
    if not tests:
        return ExecutionResult("error", "the reference has no tests (test_list)", 0.0)
    payload = {
        "solution": code,
        "imports": list(reference.get("test_imports") or ()),
        "setup": reference.get("test_setup_code") or "",
        "tests": tests,
        "nonce": secrets.token_hex(16),
    }
    with tempfile.TemporaryDirectory(prefix="loralab-sandbox-",
                                     ignore_cleanup_errors=True) as tmp:
        return _run_child(Path(tmp), payload, limits)


def _run_child(base: Path, payload: dict[str, Any], limits: SandboxLimits) -> ExecutionResult:
    work = base / "work"
    work.mkdir()
    runner, payload_path = base / "runner.py", base / "payload.json"
    runner.write_text(runner_source(), encoding="utf-8")
    payload_path.write_text(json.dumps(payload), encoding="utf-8")
    command = [*(_unshare_prefix() if limits.use_unshare else ()), sys.executable, "-I",
               str(runner), str(payload_path)]
    with open(base / "stdout", "wb") as out, open(base / "stderr", "wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=work, env=_child_env(work), stdin=subprocess.DEVNULL, stdout=out,
            stderr=err, start_new_session=True, close_fds=True, preexec_fn=_limiter(limits))
        timed_out = _wait_then_kill_group(process, limits.timeout_s)
        duration = time.monotonic() - started
    status, detail = _classify(process.returncode, timed_out, base, payload["nonce"], limits)
    return ExecutionResult(status, detail, duration, process.pid)


def _child_env(work: Path) -> dict[str, str]:
    folder = str(work)
    return {
        "PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "TMP": folder,
        "TEMP": folder, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }


def _limiter(limits: SandboxLimits) -> Callable[[], None]:
    """A preexec function setting the rlimits; it only calls setrlimit (no locks, no imports),
    which keeps it safe in the forked child while other threads run."""
    cpu = math.ceil(limits.timeout_s) + 1
    wanted = [(resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
              (resource.RLIMIT_CPU, cpu, cpu + 1),
              (resource.RLIMIT_FSIZE, limits.max_file_bytes, limits.max_file_bytes),
              (resource.RLIMIT_CORE, 0, 0)]
    settings = tuple((which, *_within_hard_limit(which, soft, hard))
                     for which, soft, hard in wanted)

    def apply() -> None:
        for which, soft, hard in settings:
            resource.setrlimit(which, (soft, hard))

    return apply


def _within_hard_limit(which: int, soft: int, hard: int) -> tuple[int, int]:
    current = resource.getrlimit(which)[1]
    if current == resource.RLIM_INFINITY:
        return soft, hard
    return min(soft, current), min(hard, current)


@functools.lru_cache(maxsize=1)
def _unshare_prefix() -> tuple[str, ...]:
    """("unshare", "-n") or ("unshare", "-r", "-n") where that works on this host, else ()."""
    executable = shutil.which("unshare")
    if executable is None:
        return ()
    for flags in (("-n",), ("-r", "-n")):
        try:
            probe = subprocess.run([executable, *flags, sys.executable, "-I", "-c", ""],
                                   capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return (executable, *flags)
    return ()


def _wait_then_kill_group(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait up to `timeout_s`, then SIGKILL the child's whole process group; True if it ran
    out of time. The child is only reaped after the kill, so its pid (the group id) cannot
    have been reused by then."""
    deadline = time.monotonic() + timeout_s
    delay, timed_out = 0.002, False
    exited = os.WEXITED | os.WNOHANG | os.WNOWAIT
    while os.waitid(os.P_PID, process.pid, exited) is None:
        if time.monotonic() >= deadline:
            timed_out = True
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    return timed_out


def _tail(path: Path, size: int = _TAIL_BYTES) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", errors="replace")


def _classify(returncode: int, timed_out: bool, base: Path, nonce: str,
              limits: SandboxLimits) -> tuple[str, str]:
    errors = _tail(base / "stderr").strip()
    if timed_out:
        return "timeout", f"killed after the {limits.timeout_s:g} s wall-clock limit"
    if returncode == -signal.SIGXCPU:
        return "timeout", "killed by the CPU-time limit"
    if returncode == -signal.SIGXFSZ:
        return "error", "killed by the file-size limit (output or files too large)"
    if returncode < 0:
        return "error", f"killed by signal {signal.Signals(-returncode).name}"
    if returncode == 0 and _tail(base / "stdout", 200).rstrip().endswith(nonce):
        return "passed", ""
    if returncode == _EXIT_FAILED:
        return "failed", errors
    if returncode in (0, _EXIT_ERROR):
        return "error", errors or "exited before the tests finished"
    return "error", errors or f"exited with status {returncode}"


def evaluate(predictions: Sequence[str], references: Sequence[Mapping[str, Any]], *,
             timeout_s: float = 10.0, memory_bytes: int = 1 << 30,
             max_file_bytes: int = 16 << 20, workers: int = 2, use_unshare: bool = True
             ) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics, per-example details): each prediction's code run against its tests."""
    limits = SandboxLimits(timeout_s, memory_bytes, max_file_bytes, use_unshare)
    pairs = list(zip(predictions, references, strict=True))

    def run_one(pair: tuple[str, Mapping[str, Any]]) -> ExecutionResult:
        return run_tests(extract_code(pair[0]), pair[1], limits)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(run_one, pairs))
    details = [{"status": r.status, "detail": r.detail, "duration_s": r.duration_s}
               for r in results]
    n = len(results)
    statuses = [r.status for r in results]
    metrics = {"n": float(n), "pass@1": statuses.count("passed") / n if n else 0.0}
    counts = {"code_timeouts": "timeout", "code_errors": "error", "code_failures": "failed"}
    metrics.update({name: float(statuses.count(status)) for name, status in counts.items()})
    return metrics, details
