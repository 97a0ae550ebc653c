"""Generated code runs only in the sandbox subprocess: it cannot touch the search process."""

from __future__ import annotations

import os
import time

import pytest

from agenttts.environment.sandbox import run_tests

pytestmark = pytest.mark.integration


def test_passing_and_failing_asserts_are_counted():
    run = run_tests(
        "def add(a, b):\n    return a + b", ["assert add(1, 2) == 3", "assert add(1, 1) == 3"]
    )
    assert (run.passed, run.total, run.all_passed) == (1, 2, False)
    assert run.error is not None and run.error.startswith("assert add(1, 1) == 3: AssertionError")


def test_os_system_and_file_removal_are_disabled(tmp_path):
    marker = tmp_path / "touched"
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    code = f"import os, shutil\nos.system('touch {marker}')\n"
    assert "PermissionError" in (run_tests(code, ["assert True"]).error or "")
    code = f"import shutil\nshutil.rmtree('{tmp_path}')\n"
    assert not run_tests(code, ["assert True"]).all_passed
    assert not marker.exists() and keep.read_text() == "mine"


def test_an_infinite_loop_is_killed_and_the_caller_goes_on():
    start = time.perf_counter()
    run = run_tests("while True:\n    pass", ["assert True"], timeout_s=1.0)
    assert run.timed_out and not run.all_passed
    assert time.perf_counter() - start < 10


def test_memory_and_exit_are_contained():
    assert "MemoryError" in (run_tests("x = bytearray(4 * 1024**3)", ["assert True"]).error or "")
    assert not run_tests("import sys\nsys.exit(0)", ["assert True"]).all_passed
    assert os.getpid()  # still here


def test_the_environment_carries_no_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    code = "import os\nKEY = os.environ.get('OPENAI_API_KEY')"
    assert run_tests(code, ["assert KEY is None"]).all_passed
