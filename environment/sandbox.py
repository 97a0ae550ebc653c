"""Running generated code against its tests, never inside the search process.

Model-written code is untrusted: it runs in a fresh `python -I` subprocess (no user site, no
PYTHON* variables), in an empty temporary folder, with an environment stripped to PATH (no keys),
in its own session so a timeout kills everything it started, under resource limits it sets on
itself before the code runs (address space, CPU seconds, file size), and with the process- and
file-destroying functions of `os`, `shutil` and `subprocess` disabled or confined, as OpenAI's
human-eval harness does. A test is one Python statement (an `assert`); the result says how many
passed.

What that guarantees to the search process: it never runs the code itself; a wall-clock timeout
kills the code's whole process group (so `while True: pass` ends at the timeout); the code cannot
allocate more than `memory_mb` of address space, nor write a file over 1 MiB; whatever it prints
goes to /dev/null (the parent reads one result line); `os.system`, `subprocess`, `fork` and `kill`
raise PermissionError; Python's file functions (`open`, `os.open`, `pathlib`, `shutil`,
`tempfile`, `os.mkdir`/`remove`/`rename`) change files only inside the temporary folder, which is
removed afterwards; sockets raise PermissionError, and where the OS allows a new network namespace
(root, or unprivileged user namespaces) the process has no network interface at all.

This guards against accidents (an `os.system`, an infinite loop, a memory blow-up), which is what
generated code does; it is not a jail for code written to escape one (ctypes, `_posixsubprocess`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_HARNESS = r"""
import builtins, ctypes, faulthandler, io, json, os, resource, shutil, socket, subprocess, sys

marker, spec = sys.argv[1], json.load(open(sys.argv[2]))
# The result goes out on a private copy of stdout; the code's own output goes to /dev/null, so
# however much it prints, the search process reads one line.
_out = os.fdopen(os.dup(1), "w")
_null = os.open(os.devnull, os.O_WRONLY)
os.dup2(_null, 1)
os.dup2(_null, 2)
# No network: a network namespace of its own (no interface up) where the OS allows one (root, or
# unprivileged user namespaces), and in any case no sockets from Python.
_libc = ctypes.CDLL(None, use_errno=True)
if _libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
    _libc.unshare(0x10000000 | 0x40000000)  # CLONE_NEWUSER | CLONE_NEWNET
class _NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise PermissionError("no network in the agenttts sandbox")
socket.socket = _NoSocket
# Files: written only inside this process's temporary folder (its cwd, also TMPDIR and HOME).
_root = os.path.realpath(os.getcwd())
def _inside(path):
    if isinstance(path, int):
        return True  # an already open descriptor
    real = os.path.realpath(os.fsdecode(os.fspath(path)))
    return real == os.devnull or real == _root or real.startswith(_root + os.sep)
def _refuse(path):
    raise PermissionError("the agenttts sandbox writes only inside its folder, not %r" % (path,))
_open, _os_open = builtins.open, os.open
def _guarded_open(file, mode="r", *args, **kwargs):
    if set(str(mode)) & set("wax+") and not _inside(file):
        _refuse(file)
    return _open(file, mode, *args, **kwargs)
_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def _guarded_os_open(path, flags, *args, **kwargs):
    if flags & _WRITES and not _inside(path):
        _refuse(path)
    return _os_open(path, flags, *args, **kwargs)
builtins.open = io.open = _guarded_open
os.open = _guarded_os_open
def _guard(fn, *where):
    def guarded(*args, **kwargs):
        for i in where:
            if not _inside(args[i]):
                _refuse(args[i])
        return fn(*args, **kwargs)
    return guarded
for _name, _where in (("mkdir", (0,)), ("mkfifo", (0,)), ("mknod", (0,)), ("utime", (0,)),
                      ("symlink", (1,)), ("link", (1,)), ("remove", (0,)), ("unlink", (0,)),
                      ("rmdir", (0,)), ("truncate", (0,)), ("chmod", (0,)),
                      ("rename", (0, 1)), ("replace", (0, 1))):
    setattr(os, _name, _guard(getattr(os, _name), *_where))
for _limit, _value in ((resource.RLIMIT_AS, spec["memory"]), (resource.RLIMIT_CPU, spec["cpu"]),
                       (resource.RLIMIT_FSIZE, 1 << 20), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(_limit, (_value, _value))
faulthandler.disable()
def _blocked(*args, **kwargs):
    raise PermissionError("disabled in the agenttts sandbox")
for _name in ("system", "popen", "kill", "killpg", "fork", "forkpty", "execv", "execve",
              "execvp", "execvpe", "spawnv", "spawnve", "spawnvp", "putenv", "chown", "setuid",
              "fchdir", "chroot"):
    if hasattr(os, _name):
        setattr(os, _name, _blocked)
shutil.rmtree = shutil.move = shutil.chown = _blocked
subprocess.Popen = subprocess.run = subprocess.call = _blocked
subprocess.check_output = subprocess.check_call = _blocked
builtins.exit = builtins.quit = _blocked
result = {"passed": 0, "total": len(spec["tests"]), "error": None}
ns = {"__name__": "__sandbox__"}
try:
    exec(compile(spec["setup"] + "\n" + spec["code"], "<solution>", "exec"), ns)
except BaseException as e:
    result["error"] = "solution: %s: %s" % (type(e).__name__, str(e)[:200])
else:
    for test in spec["tests"]:
        try:
            exec(compile(test, "<test>", "exec"), ns)
            result["passed"] += 1
        except BaseException as e:
            if result["error"] is None:
                result["error"] = "%s: %s: %s" % (test[:80], type(e).__name__, str(e)[:200])
_out.write("\n" + marker + json.dumps(result) + "\n")
_out.flush()
"""


@dataclass(frozen=True)
class TestRun:
    """How a solution fared: tests passed of total, and the first failure or the crash."""

    passed: int
    total: int
    error: str | None = None
    timed_out: bool = False

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total


#: Sandboxes running at once in this process: a trial scoring many items at once queues here
#: instead of starting a Python process per item and sample all together.
_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


def run_tests(
    code: str,
    tests: Sequence[str],
    *,
    setup: str = "",
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> TestRun:
    """Execute `code` then each test statement in a sandboxed subprocess; never raises for
    what the code does (a crash, a hang, a memory blow-up are results)."""
    marker = f"@@agenttts-{secrets.token_hex(8)}@@"
    with _SLOTS, tempfile.TemporaryDirectory(prefix="agenttts-sandbox-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "code": code,
                    "setup": setup or "",
                    "tests": list(tests),
                    "memory": memory_mb * 1024 * 1024,
                    "cpu": int(timeout_s) + 1,
                }
            )
        )
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _HARNESS, marker, str(spec)],
            cwd=tmp,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONHASHSEED": "0",
                "TMPDIR": tmp,
                "HOME": tmp,
            },
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # one process group: a timeout kills all it started
        )
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return TestRun(0, len(tests), f"timed out after {timeout_s:g} s", timed_out=True)
        finally:
            _kill(proc)
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith(marker):
            got = json.loads(line[len(marker) :])
            return TestRun(int(got["passed"]), int(got["total"]), got["error"])
    why = f"the solution's process ended without a result (exit {proc.returncode})"
    return TestRun(0, len(tests), why)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The child's whole session: whatever it started goes with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
