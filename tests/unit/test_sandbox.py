"""The sandbox that runs generated code (environment/sandbox.py), with real subprocesses: right and
wrong solutions are counted, and what generated code does by accident (a shell command, a file
written elsewhere, a network call, an endless loop, a memory blow-up, a flood of output, killing
its parent) stays inside it; the test process itself is the search process that must survive."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from agenttts.environment.sandbox import run_tests

SQUARE = "def square(x):\n    return x * x\n"


def test_passing_and_failing_solutions_are_counted():
    ok = run_tests(SQUARE, ["assert square(2) == 4", "assert square(-3) == 9"])
    assert (ok.passed, ok.total, ok.all_passed, ok.error) == (2, 2, True, None)

    wrong = run_tests(
        "def square(x):\n    return x + x\n", ["assert square(2) == 4", "assert square(3) == 9"]
    )
    assert (wrong.passed, wrong.total, wrong.all_passed) == (1, 2, False)
    assert wrong.error is not None and "square(3) == 9" in wrong.error

    broken = run_tests("def square(x) return", ["assert square(2) == 4"])
    assert broken.passed == 0 and broken.error is not None and "SyntaxError" in broken.error

    setup = run_tests("def twice(x):\n    return K * x\n", ["assert twice(2) == 4"], setup="K = 2")
    assert setup.all_passed


def test_a_shell_command_or_a_file_outside_its_folder_is_refused(tmp_path: Path):
    target = tmp_path / "touched"
    for code in (
        f"import os\nos.system('touch {target}')",
        f"import subprocess\nsubprocess.run(['touch', '{target}'])",
        f"open('{target}', 'w').write('x')",
        f"import pathlib\npathlib.Path('{target}').write_text('x')",
        f"import pathlib\npathlib.Path('{target}').touch()",
        f"import shutil\nshutil.copy('/etc/hostname', '{target}')",
    ):
        result = run_tests(code, ["assert True"])
        assert not result.all_passed and "PermissionError" in (result.error or ""), code
        assert not target.exists(), code
    victim = tmp_path / "keep"
    victim.write_text("data")
    result = run_tests(f"import os\nos.remove('{victim}')", [])
    assert "PermissionError" in (result.error or "") and victim.read_text() == "data"


def test_files_inside_its_own_folder_work_and_vanish():
    code = (
        "import os, tempfile\n"
        "open('scratch.txt', 'w').write('x')\n"
        "with tempfile.NamedTemporaryFile('w', delete=False) as f:\n"
        "    f.write('y')\n"
        "os.remove('scratch.txt')\n"
        "WHERE = os.getcwd()\n"
    )
    result = run_tests(code, ["assert not os.path.exists('scratch.txt')"])
    assert result.all_passed, result.error


def test_no_network():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.3)
    port = server.getsockname()[1]
    try:
        for code in (
            f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)",
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
        ):
            result = run_tests(code, ["assert True"])
            assert not result.all_passed, code
        try:
            server.accept()
            raise AssertionError("sandboxed code reached a local server")
        except TimeoutError:
            pass
    finally:
        server.close()


def test_an_endless_loop_is_killed_at_the_timeout():
    start = time.monotonic()
    result = run_tests("while True:\n    pass\n", ["assert True"], timeout_s=1.5)
    elapsed = time.monotonic() - start
    assert result.timed_out and result.passed == 0 and "timed out" in (result.error or "")
    assert elapsed < 6


def test_a_flood_of_output_does_not_reach_the_parent():
    start = time.monotonic()
    result = run_tests("while True:\n    print('x' * 100000)\n", ["assert True"], timeout_s=1.5)
    assert result.timed_out and time.monotonic() - start < 6
    printed = run_tests("print('x' * 5_000_000)\n", ["assert 1 + 1 == 2"])
    assert printed.all_passed


def test_a_memory_bomb_is_contained():
    result = run_tests("x = bytearray(8 * 1024**3)\n", ["assert True"], memory_mb=512)
    assert not result.all_passed and "MemoryError" in (result.error or "")


def test_it_cannot_kill_its_parent_and_exiting_early_gives_no_result():
    parent = os.getpid()
    for code in (
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
        "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)",
    ):
        result = run_tests(code, ["assert True"])
        assert "PermissionError" in (result.error or ""), code
    assert os.getpid() == parent  # still here
    gone = run_tests("import os\nos._exit(3)", ["assert True"])
    assert gone.passed == 0 and "exit 3" in (gone.error or "")


def test_the_environment_carries_no_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    code = "import os\nKEY = os.environ.get('OPENAI_API_KEY')"
    assert run_tests(code, ["assert KEY is None"]).all_passed
