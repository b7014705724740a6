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
import inspect
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
    runner.write_text(_runner_source(), encoding="utf-8")
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


# ---- Everything below runs only in the child, from its source text (see _runner_source). ----


@functools.lru_cache(maxsize=1)
def _runner_source() -> str:
    """The child's script: the _child_* functions' own source, then a call to _child_main.
    The child imports nothing from loralab, so it starts fast and needs no install."""
    parts = [inspect.getsource(function) for function in _CHILD_FUNCTIONS]
    return "from __future__ import annotations\n\n" + "\n\n".join(parts) + "\n_child_main()\n"


def _child_main() -> None:
    """Read the payload, install the guards, run imports, solution, setup and tests; exit
    with _child_run's status, printing the nonce last when every test passed."""
    import json
    import os
    import sys

    write, exit_now = os.write, os._exit
    with open(sys.argv[1], encoding="utf-8") as handle:
        payload = json.load(handle)
    os.remove(sys.argv[1])  # the nonce must not stay readable for the solution
    _child_guard_writes(os.path.realpath(os.getcwd()))
    _child_guard_network()
    _child_guard_processes()
    status = _child_run(payload)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the solution may have closed or replaced it
            pass
    if status == 0:
        write(1, f"\n{payload['nonce']}\n".encode())
    exit_now(status)


def _child_run(payload: dict) -> int:
    """0 when every test passed, 3 when a test's assert failed, 4 on any other exception."""
    import builtins
    import sys
    import traceback

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    stages = [("test_imports", line, False) for line in payload["imports"]]
    stages += [("solution", payload["solution"], False),
               ("test_setup_code", payload["setup"], False)]
    stages += [(f"test {i}", test, True) for i, test in enumerate(payload["tests"])]
    for stage, source, is_test in stages:
        try:
            exec(compile(source, f"<{stage}>", "exec"), namespace)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are errors too
            failed = is_test and isinstance(exc, AssertionError)
            traceback.print_exc(limit=-5)
            print(f"sandbox: {'failed' if failed else 'error'} in {stage}: {source.strip()[:500]}",
                  file=sys.stderr)
            return 3 if failed else 4
    return 0


def _child_guard_writes(root: str) -> None:
    """Make the usual ways of creating, writing, removing and renaming files refuse paths
    outside `root` (symlinks resolved; descriptors were checked when they were opened)."""
    import builtins
    import errno
    import functools
    import io
    import os
    import posix
    import shutil

    def resolve(path, dir_fd, follow: bool) -> str:
        text = os.fsdecode(os.fspath(path))
        if dir_fd is not None and not os.path.isabs(text):
            text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
        head, tail = os.path.split(text)
        if follow or tail in ("", ".", ".."):
            return os.path.realpath(text)
        return os.path.join(os.path.realpath(head or "."), tail)

    def check(path, dir_fd=None, follow: bool = True) -> None:
        if path is None or isinstance(path, int):
            return
        full = resolve(path, dir_fd, follow)
        if full != root and not full.startswith(root + os.sep) and full != os.devnull:
            raise PermissionError(errno.EACCES, "sandbox: no writing outside the working folder",
                                  os.fsdecode(os.fspath(path)))

    def guarded(function, paths, follow: bool):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for position, keyword, fd_keyword in paths:
                path = args[position] if position < len(args) else kwargs.get(keyword)
                check(path, kwargs.get(fd_keyword), follow)
            return function(*args, **kwargs)
        return wrapper

    one, two = ((0, "path", "dir_fd"),), ((0, "src", "src_dir_fd"), (1, "dst", "dst_dir_fd"))
    table = [(name, one, False) for name in ("remove", "unlink", "rmdir", "mkdir", "mknod",
                                             "mkfifo", "lchown")]
    table += [(name, one, True) for name in ("chmod", "chown", "truncate", "utime", "setxattr",
                                             "removexattr")]
    table += [("rename", two, False), ("replace", two, False), ("link", two, True),
              ("symlink", ((1, "dst", "dir_fd"),), False)]
    for name, paths, follow in table:
        if hasattr(os, name):
            setattr(os, name, guarded(getattr(os, name), paths, follow))
            setattr(posix, name, getattr(os, name))
    shutil.rmtree = guarded(shutil.rmtree, ((0, "path", "dir_fd"),), False)
    shutil.move = guarded(shutil.move, two, False)

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    original_os_open, original_open = os.open, builtins.open

    @functools.wraps(original_os_open)
    def guarded_os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & write_flags:
            check(path, dir_fd)
        return original_os_open(path, flags, mode, dir_fd=dir_fd)

    @functools.wraps(original_open)
    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(mode, str) and any(flag in mode for flag in "wax+"):
            check(file)
        return original_open(file, mode, *args, **kwargs)

    os.open = posix.open = guarded_os_open
    builtins.open = io.open = guarded_open


def _child_guard_network() -> None:
    """Make socket construction and name lookups raise PermissionError."""
    import _socket
    import socket

    def refuse(*args, **kwargs):
        raise PermissionError("sandbox: network access is disabled")

    class RefusedSocket(socket.socket):
        def __init__(self, *args, **kwargs) -> None:
            refuse()

    class RefusedLowLevelSocket(_socket.socket):
        def __init__(self, *args, **kwargs) -> None:
            refuse()

    socket.socket = socket.SocketType = RefusedSocket
    _socket.socket = _socket.SocketType = RefusedLowLevelSocket
    for module in (socket, _socket):
        for name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo",
                     "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
            if hasattr(module, name):
                setattr(module, name, refuse)


def _child_guard_processes() -> None:
    """Make starting processes and sending signals raise PermissionError."""
    import _posixsubprocess
    import os
    import posix
    import subprocess

    def refuse(*args, **kwargs):
        raise PermissionError("sandbox: starting processes and sending signals is disabled")

    class RefusedPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs) -> None:
            refuse()

    names = ("system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "kill",
             "killpg", "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp",
             "execvpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle",
             "spawnlp", "spawnlpe")
    for module in (os, posix):
        for name in names:
            if hasattr(module, name):
                setattr(module, name, refuse)
    subprocess.Popen = RefusedPopen
    _posixsubprocess.fork_exec = refuse


_CHILD_FUNCTIONS = (_child_guard_writes, _child_guard_network, _child_guard_processes,
                    _child_run, _child_main)
