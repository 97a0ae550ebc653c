"""One error hierarchy: every project exception derives from `AgentTTSError`, commands only raise,
and `main()` alone turns an error into its message and exit code."""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import agenttts
import agenttts.graph.runner
import agenttts.search_bench
from agenttts.cli import main as cli_main
from agenttts.environment.task import Problem, TaskError
from agenttts.errors import (
    AgentTTSError,
    EmbeddedServerError,
    InputError,
    ResumableStop,
    UserCodeError,
)


def project_modules() -> Iterator[ModuleType]:
    for info in pkgutil.walk_packages(agenttts.__path__, "agenttts."):
        try:
            yield importlib.import_module(info.name)
        except ModuleNotFoundError as e:
            if (e.name or "").startswith("agenttts"):
                raise
            # a module of an optional extra that is not installed here


def test_every_project_exception_derives_from_the_base():
    """Private classes (`_Name`) are signals that never leave their module, so they are exempt."""
    found = {
        f"{module.__name__}.{name}": obj
        for module in project_modules()
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == module.__name__
        and not name.startswith("_")
    }
    assert {"agenttts.errors.InputError", "agenttts.environment.task.TaskError"} <= set(found)
    assert [name for name, cls in found.items() if not issubclass(cls, AgentTTSError)] == []


def main_raising(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> int:
    """`main()` running a command that only raises `error`."""

    def command(args: argparse.Namespace) -> int:
        raise error

    parser = argparse.ArgumentParser(prog="agenttts")
    parser.set_defaults(func=command)
    monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
    return cli_main.main([])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError("bad request"), 2),
        (TaskError("task.yaml", [Problem(field="stages", message="bad request")]), 2),
        (EmbeddedServerError("bad request"), 2),
        (ResumableStop("bad request"), 3),
        (UserCodeError("bad request"), 2),
    ],
)
def test_main_maps_each_kind_once(monkeypatch, capsys, error, code):
    assert main_raising(monkeypatch, error) == code
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and out.err.count("bad request") == 1 and not out.out


def test_main_maps_ctrl_c_to_130(monkeypatch, capsys):
    assert main_raising(monkeypatch, KeyboardInterrupt()) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_commands_raise_and_main_reports(monkeypatch, capsys, tmp_path: Path):
    """search and bench leave a resumable stop to main (one message, exit 3); show and runs
    leave a missing database to it (exit 2)."""

    def stopped(*args: object, **kwargs: object) -> None:
        raise ResumableStop("agent endpoint gone; thread 't' is saved")

    monkeypatch.setattr(agenttts.graph.runner, "run_search", stopped)
    monkeypatch.setattr(agenttts.search_bench, "run_bench", stopped)
    db = str(tmp_path / "none.sqlite")
    for argv in (
        ["search", "sim-2wiki", "--db", db],
        ["bench", "sim-2wiki", "--out", str(tmp_path / "out"), "--quiet"],
    ):
        assert cli_main.main(argv) == 3
        assert capsys.readouterr().err.count("error: agent endpoint gone") == 1
    for argv in (["show", "t", "--db", db], ["runs", "--db", db]):
        assert cli_main.main(argv) == 2
        assert capsys.readouterr().err == f"error: no checkpoint database at {db}\n"


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`agenttts show ... | head` printed a BrokenPipeError traceback: the pipe's reader is gone
    before the command writes, and the command ends quietly with a shell's SIGPIPE status."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "agenttts.cli.main", "task", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the command has imported anything and written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
