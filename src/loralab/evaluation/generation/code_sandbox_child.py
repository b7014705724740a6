"""The sandboxed child of the code suite (loralab.evaluation.generation.code_suite): its
script is the source text of the _child_* functions below, then a call to _child_main. The
child imports nothing from loralab, so it starts fast and needs no install; these functions
run only there, never in the parent process."""

from __future__ import annotations

import functools
import inspect


@functools.lru_cache(maxsize=1)
def runner_source() -> str:
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
