"""Grid replay: exact and nearest lookup, tolerance, splits, SQLite, measured cost, task checks."""

from __future__ import annotations

import asyncio
import csv
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from agenttts.environment.budget import stage_budget
from agenttts.environment.registry import make_executor
from agenttts.environment.replay_grid import GridReplayExecutor
from agenttts.environment.space import Config, config_cost
from agenttts.environment.task import TaskError
from agenttts.environment.task_loading import load_task

COLUMNS = ["ret.model", "ret.samples", "qa.model", "qa.samples", "em", "f1", "split"]
ROWS = [
    ["big", 1, "small", 1, 0.50, 0.60, ""],  # row 1
    ["big", 2, "small", 4, 0.60, 0.70, ""],  # row 2
    ["big", 2, "small", 4, 0.65, 0.75, "test"],  # row 3: the test split's own answer
    ["small", 1, "small", 1, 0.30, 0.40, ""],  # row 4
    ["small", 8, "small", 8, 0.45, "", "train"],  # row 5: no f1 value
    ["big", 16, "small", 1, "", 0.9, ""],  # row 6: no main-metric value
]


def task_dict(settings: dict[str, Any], models: tuple[str, ...] = ("big", "small")) -> dict:
    params = {"big": 7e9, "small": 3e9, "huge": 70e9}
    return {
        "name": "grid-test",
        "budget": 500,
        "stages": [
            {
                "name": "ret",
                "models": [{"name": m, "params": params[m]} for m in models],
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": 32,
            },
            {
                "name": "qa",
                "models": [{"name": "small", "params": 3e9}],
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": 32,
            },
        ],
        "metrics": ["em", "f1"],
        "main_metric": "em",
        "environment": {"kind": "grid", "settings": settings},
    }


def write_csv(path: Path, columns: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)
    return path


def make(tmp_path: Path, settings: dict | None = None, **kw: Any):
    if not (tmp_path / "grid.csv").exists():
        write_csv(tmp_path / "grid.csv", COLUMNS, ROWS)
    (tmp_path / "task.yaml").write_text(
        yaml.safe_dump(task_dict(settings or {"table": "grid.csv"}, **kw))
    )
    task = load_task(tmp_path / "task.yaml")
    return task, make_executor(task)


def run(executor, split="train", **stages):
    config = Config.of(stages)
    (result,) = asyncio.run(executor.run([config], split))
    return result


def test_exact_row(tmp_path):
    task, ex = make(tmp_path)
    assert isinstance(ex, GridReplayExecutor)
    r = run(ex, ret=("big", 1), qa=("small", 1))
    assert r.ok and r.source == "row 1 exact"
    assert r.metrics == {"em": 0.5, "f1": 0.6}
    assert r.nominal_cost == pytest.approx(
        config_cost(task, Config.of({"ret": ("big", 1), "qa": ("small", 1)}))
    )
    assert r.measured_cost is None  # the table carries no tokens
    assert r.details["row"] == 1 and r.details["distance"] == 0


def test_nearest_row_within_tolerance(tmp_path):
    _, ex = make(tmp_path)
    r = run(ex, ret=("big", 2), qa=("small", 3))  # row 2 has qa=4: d = log2(4/3)
    assert r.ok
    d = math.log2(4 / 3)
    assert r.source == f"row 2 nearest d={d:.2f}"
    assert r.details["distance"] == pytest.approx(d)
    assert r.details["row_samples"] == {"ret": 2, "qa": 4}
    assert r.metrics["em"] == 0.6
    # Nominal cost is the trial's own configuration's, not the answering row's.
    assert r.nominal_cost == pytest.approx(
        config_cost(ex.task, Config.of({"ret": ("big", 2), "qa": ("small", 3)}))
    )


def test_distance_is_log2_scale_invariant(tmp_path):
    write_csv(
        tmp_path / "grid.csv",
        COLUMNS,
        [["big", 8, "small", 1, 0.1, 0.1, ""], ["big", 64, "small", 1, 0.2, 0.2, ""]],
    )
    _, ex = make(tmp_path, models=("big",))
    a = run(ex, ret=("big", 16), qa=("small", 1))
    b = run(ex, ret=("big", 32), qa=("small", 1))
    assert a.details["distance"] == pytest.approx(1.0) == b.details["distance"]
    assert a.source == "row 1 nearest d=1.00" and b.source == "row 2 nearest d=1.00"


def test_beyond_tolerance_is_a_recorded_failure(tmp_path):
    _, ex = make(tmp_path)
    r = run(ex, ret=("big", 8), qa=("small", 4))  # nearest: row 2 at d=2
    assert not r.ok and r.metrics == {}
    assert "no grid row within tolerance 1" in r.error and "row 2 at d=2.00" in r.error
    assert r.nominal_cost > 0


def test_tolerance_setting(tmp_path):
    _, strict = make(tmp_path, {"table": "grid.csv", "tolerance": 0})
    assert not run(strict, ret=("big", 2), qa=("small", 3)).ok
    assert run(strict, ret=("big", 2), qa=("small", 4)).ok
    _, loose = make(tmp_path, {"table": "grid.csv", "tolerance": 3})
    assert run(loose, ret=("big", 8), qa=("small", 4)).source == "row 2 nearest d=2.00"


def test_models_never_in_table_fail_cleanly(tmp_path):
    _, ex = make(tmp_path)
    r = run(ex, ret=("small", 2), qa=("small", 1))  # small+small exists, at other samples
    assert r.ok and r.source == "row 4 nearest d=1.00"
    write_csv(tmp_path / "grid.csv", COLUMNS, ROWS[:3])  # no small+small rows at all
    _, ex = make(tmp_path, {"table": "grid.csv", "tolerance": 100}, models=("big",))
    r = run(ex, ret=("big", 1), qa=("small", 1))
    assert r.ok
    bad = run(ex, ret=("small", 1), qa=("small", 1))
    assert not bad.ok and "unknown model 'small'" in bad.error


def test_split_column_selects_rows(tmp_path):
    _, ex = make(tmp_path)
    assert run(ex, "train", ret=("big", 2), qa=("small", 4)).source == "row 2 exact"
    assert run(ex, "test", ret=("big", 2), qa=("small", 4)).source == "row 3 exact"
    assert run(ex, "test", ret=("big", 2), qa=("small", 4)).metrics["em"] == 0.65
    # Row 5 serves only train: the test split falls back to the nearest any-split row.
    assert run(ex, "train", ret=("small", 8), qa=("small", 8)).source == "row 5 exact"
    test = run(ex, "test", ret=("small", 8), qa=("small", 8))
    assert not test.ok and "row 4 at d=6.00" in test.error


def test_missing_metric_values(tmp_path):
    _, ex = make(tmp_path)
    r = run(ex, "train", ret=("small", 8), qa=("small", 8))
    assert r.ok and r.metrics == {"em": 0.45}  # f1 cell empty: absent, not 0
    r = run(ex, ret=("big", 16), qa=("small", 1))
    assert not r.ok and "row 6 has no value for 'em'" in r.error


def test_sqlite_source(tmp_path):
    db = tmp_path / "grid.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE other (x)")
    con.execute(
        'CREATE TABLE results ("ret.model", "ret.samples", "qa.model", "qa.samples", em, f1, split)'
    )
    con.executemany(
        "INSERT INTO results VALUES (?,?,?,?,?,?,?)",
        [[None if v == "" else v for v in row] for row in ROWS],
    )
    con.commit()
    con.close()
    _, ex = make(tmp_path, {"table": "grid.db", "table_name": "results"})
    r = run(ex, "test", ret=("big", 2), qa=("small", 4))
    assert r.ok and r.source == "row 3 exact" and r.metrics == {"em": 0.65, "f1": 0.75}
    assert run(ex, ret=("big", 2), qa=("small", 3)).source.startswith("row 2 nearest")
    # Two tables and no table_name: the task names the problem instead of guessing.
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task_dict({"table": "grid.db"})))
    with pytest.raises(TaskError, match="table_name"):
        load_task(tmp_path / "task.yaml")


def test_measured_cost_from_token_columns(tmp_path):
    columns = [
        *COLUMNS[:6],
        "queries",
        "ret.prompt_tokens",
        "ret.completion_tokens",
        "qa.prompt_tokens",
        "qa.completion_tokens",
    ]
    # 10 questions; ret: 300-token prompts, 2 samples x 50 tokens; qa: 200-token prompts, 4 x 40.
    rows = [["big", 2, "small", 4, 0.6, 0.7, 10, 3000, 1000, 2000, 1600]]
    write_csv(tmp_path / "grid.csv", columns, rows)
    task, ex = make(tmp_path, models=("big",))
    r = run(ex, ret=("big", 2), qa=("small", 4))
    ret = task.stage("ret")
    assert r.stages["ret"].measured_cost == pytest.approx(stage_budget(2, 7e9, 300, 50))
    assert r.stages["qa"].measured_cost == pytest.approx(stage_budget(4, 3e9, 200, 40))
    assert r.measured_cost == pytest.approx(
        r.stages["ret"].measured_cost + r.stages["qa"].measured_cost
    )
    assert r.stages["ret"].nominal_cost == pytest.approx(ret.cost("big", 2))
    assert r.prompt_tokens == 5000 and r.completion_tokens == 2600
    # A nearest row's mean lengths are applied at the trial's own sample count.
    near = run(ex, ret=("big", 2), qa=("small", 3))
    assert near.stages["qa"].measured_cost == pytest.approx(stage_budget(3, 3e9, 200, 40))


def test_check_task_reports_table_problems(tmp_path):
    write_csv(tmp_path / "grid.csv", ["ret.model", "ret.samples", "em"], [["big", 1, 0.5]])
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task_dict({"table": "grid.csv"})))
    with pytest.raises(TaskError) as info:
        load_task(tmp_path / "task.yaml")
    msgs = [str(p) for p in info.value.problems]
    assert any("no column 'qa.model'" in m for m in msgs)
    assert any("no column 'f1'" in m for m in msgs)


def test_check_task_flags_models_absent_from_table(tmp_path):
    write_csv(tmp_path / "grid.csv", COLUMNS, ROWS)
    (tmp_path / "task.yaml").write_text(
        yaml.safe_dump(task_dict({"table": "grid.csv"}, models=("big", "small", "huge")))
    )
    with pytest.raises(TaskError) as info:
        load_task(tmp_path / "task.yaml")
    (problem,) = info.value.problems
    assert problem.field == "stages[ret].models[huge]" and "never appears" in problem.message


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([["big", 0, "small", 1, 0.5, 0.5, ""]], "ret.samples must be an integer >= 1"),
        ([["big", 1.5, "small", 1, 0.5, 0.5, ""]], "ret.samples must be an integer >= 1"),
        ([["big", 1, "small", 1, "high", 0.5, ""]], "could not convert"),
        ([["big", 1, "small", 1, 0.5, 0.5, "dev"]], "split must be train, test or empty"),
        ([["big", 1, "small", 1, 0.5, 0.5, ""]] * 2, "duplicates row 1"),
    ],
)
def test_bad_cells_are_named_by_row(tmp_path, rows, expected):
    write_csv(tmp_path / "grid.csv", COLUMNS, rows)
    (tmp_path / "task.yaml").write_text(
        yaml.safe_dump(task_dict({"table": "grid.csv"}, models=("big",)))
    )
    with pytest.raises(TaskError) as info:
        load_task(tmp_path / "task.yaml")
    assert any(expected in str(p) for p in info.value.problems), info.value.problems


def test_settings_are_validated(tmp_path):
    write_csv(tmp_path / "grid.csv", COLUMNS, ROWS)
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "environment.settings.table"),
        ({"table": "grid.csv", "tolerence": 2}, "environment.settings.tolerence"),
        ({"table": "grid.csv", "tolerance": -1}, "environment.settings.tolerance"),
        ({"table": "absent.csv"}, "environment.settings.table"),
    ]
    for settings, field in cases:
        (tmp_path / "task.yaml").write_text(yaml.safe_dump(task_dict(settings)))
        with pytest.raises(TaskError) as info:
            load_task(tmp_path / "task.yaml")
        assert [p.field for p in info.value.problems] == [field]
        with pytest.raises(TaskError):
            GridReplayExecutor(load_task(tmp_path / "task.yaml", check_environment=False))


def test_batch_runs_every_config(tmp_path):
    _, ex = make(tmp_path)
    configs = [
        Config.of({"ret": ("big", 1), "qa": ("small", 1)}),
        Config.of({"ret": ("big", 32), "qa": ("small", 32)}),
        Config.of({"ret": ("small", 1), "qa": ("small", 1)}),
    ]
    results = asyncio.run(ex.run(configs, "train"))
    assert [r.ok for r in results] == [True, False, True]
    assert [r.config for r in results] == configs
