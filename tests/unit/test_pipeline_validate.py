"""Bad input to `kind: python` and `kind: chain` is one clear error from `agenttts task validate`
(exit 2), before anything is spent: the endpoint here does not even exist. The cases load the task
as `task validate` does; one runs the command itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agenttts.environment.task import TaskError
from agenttts.environment.task_loading import load_task

DEAD = "http://127.0.0.1:9/v1"  # nothing listens: validation must not call it
ITEMS = [{"question": "Capital of France?", "answers": ["Paris"], "passages": ["a", "b"]}]
GOOD = "async def run(item, stages):\n    return item['question']\n"


def stage(name: str, **settings: Any) -> dict[str, Any]:
    return {
        "name": name,
        "models": [{"name": "m", "endpoint": DEAD, "params": 1e9}],
        "prompt_tokens": 64,
        "gen_tokens": 8,
        "aggregator": "vote",
        "settings": settings,
    }


def write(
    root: Path,
    environment: dict[str, Any],
    *,
    code: str = GOOD,
    data: str | None = None,
    stages: list[dict[str, Any]] | None = None,
    metrics: list[str] | None = None,
) -> str:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.jsonl").write_text(data or "".join(json.dumps(i) + "\n" for i in ITEMS))
    (root / "my_pipe_v.py").write_text(code)
    task = {
        "name": "bad",
        "budget": 10,
        "stages": stages or [stage("qa")],
        "metrics": metrics or ["em"],
        "main_metric": (metrics or ["em"])[0],
        "data": {"path": "data.jsonl", "train_size": 1, "test_size": 0},
        "environment": environment,
    }
    (root / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return str(root / "task.yaml")


def python(**settings: Any) -> dict[str, Any]:
    return {"kind": "python", "settings": {"pipeline": "my_pipe_v:run", **settings}}


def validate(path: str) -> tuple[int, str]:
    """What `task validate` does: the exit code and the message."""
    try:
        load_task(path)
    except TaskError as e:
        return e.exit_code, str(e)
    return 0, "OK"


def test_the_command_exits_2_with_every_problem(tmp_path):
    path = write(tmp_path, python(pipeline="no_such_module_xyz:run", metric="bleu9"))
    agenttts = str(Path(sys.executable).with_name("agenttts"))
    out = subprocess.run([agenttts, "task", "validate", path], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert "cannot import 'no_such_module_xyz'" in out.stderr
    assert "unknown metric 'bleu9'" not in out.stderr  # the pipeline is checked first: one error
    ok = write(tmp_path / "ok", python())
    out = subprocess.run([agenttts, "task", "validate", ok], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("OK bad:"), out.stderr


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"environment": python(pipeline="no_such_module_xyz:run")},
            "environment.settings.pipeline: pipeline 'no_such_module_xyz:run': cannot import "
            "'no_such_module_xyz'",
        ),
        (
            {"environment": python(), "code": "import no_such_dependency_xyz\n"},
            "ModuleNotFoundError: No module named 'no_such_dependency_xyz'",
        ),
        (
            {"environment": python(pipeline="my_pipe_v:missing")},
            "'my_pipe_v' has no attribute 'missing'",
        ),
        (
            {"environment": python(), "code": "async def run(item):\n    return 1\n"},
            "has the signature (item): a pipeline is called as pipeline(item, stages)",
        ),
        (
            {"environment": python(), "code": "run = 42\n"},
            "pipeline 'my_pipe_v:run' is a int: give an async function",
        ),
        (
            {"environment": python(), "data": '{"question": "a", "answers": ["b"]}\n{oops\n'},
            "data.path: data file ",
        ),
        (
            {"environment": python(metric="bleu9")},
            "environment.settings.metric: unknown metric 'bleu9' (built-in: em, f1, accuracy, "
            "contains, numeric, pass@tests",
        ),
        (
            {"environment": python(), "metrics": ["rouge"]},
            "unknown metric 'rouge'",
        ),
        (
            {"environment": python(metric="em"), "metrics": ["em", "rouge"]},
            "metric(s) ['rouge'] are not built-in",
        ),
        (
            {
                "environment": python(),
                "code": "async def run(item, stages):\n    return stages['rerank']\n",
            },
            "the pipeline asks for stage(s) ['rerank'], which the task does not declare",
        ),
        (
            {"environment": python(input={"question": "query"})},
            "`input`/`output` apply to a LangGraph graph only",
        ),
        (
            {
                "environment": {"kind": "chain"},
                "stages": [stage("qa", prompt={"user": "Q: {quesiton}"})],
            },
            "stages[qa].settings.prompt: names {quesiton}, which is neither a field of the data "
            "items (answers, passages, question) nor an earlier stage",
        ),
        (
            {
                "environment": {"kind": "chain"},
                "stages": [
                    stage("a", prompt={"user": "{b} {question}"}),
                    stage("b", prompt={"user": "{a}"}),
                ],
            },
            "stages[a].settings.prompt: names {b}, the output of stage 'b', which runs later",
        ),
        (
            {
                "environment": {"kind": "chain"},
                "stages": [stage("qa", prompt={"user": "{question}"}, parse={"regex": "("})],
            },
            "stages[qa].settings.parse",
        ),
    ],
)
def test_bad_input_is_one_clear_error_before_any_spend(tmp_path, kwargs, expected):
    code, out = validate(write(tmp_path, **kwargs))
    assert code == 2, out
    assert expected in out, out


def test_a_data_file_that_does_not_parse_names_the_line(tmp_path):
    path = write(tmp_path, python(), data='{"question": "a", "answers": ["b"]}\n{oops\n')
    code, out = validate(path)
    assert code == 2 and "line 2: not valid JSON" in out, out


def test_validate_warns_when_the_budget_constrains_nothing(tmp_path, capsys):
    """A 135M model at short lengths costs 0 in every configuration (the formula floors at 0):
    the search would run with a vacuous budget, and `task validate` says so."""
    from agenttts.cli.main import main

    tiny = stage("qa")
    tiny["models"][0]["params"] = 135e6
    assert main(["task", "validate", write(tmp_path / "tiny", python(), stages=[tiny])]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: every configuration costs 0 budget units")
    assert "135M parameters stay at 0 below ~2,800 tokens per query" in err

    big = stage("qa")
    big["models"][0]["params"] = 70e9  # S=1 costs 11.4: over the budget of 10 at once
    big["models"].append({"name": "m2", "endpoint": DEAD, "params": 1e9})
    assert main(["task", "validate", write(tmp_path / "big", python(), stages=[big])]) == 0
    assert capsys.readouterr().err == ""
