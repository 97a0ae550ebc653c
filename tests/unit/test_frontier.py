"""A frontier search (several budgets in one thread, `agenttts.frontier`) on the grid-replay task:
each budget's optimum is the one a one-budget search of it finds, and the front is non-dominated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agenttts.archive import Archive, Trial
from agenttts.environment.space import Config
from agenttts.environment.task_loading import load_task
from agenttts.frontier import BudgetRun, budgets_of, initial_plan, label, next_target, rotation
from agenttts.graph.runner import run_search

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task

BUDGETS = [100.0, 250.0, 500.0]


def trial(i: int, cost: float, score: float | None, **kw) -> Trial:
    config = Config.of({"retrieval": ("r-7b", i + 1), "qa": ("qa-3b", 1)})
    return Trial(
        trial_id=i,
        iteration=0,
        proposer="t",
        status="ok" if score is not None else "failed",
        config=config,
        score=score,
        metrics={"em": score} if score is not None else {},
        nominal_cost=cost,
        **kw,
    )


def test_the_front_holds_exactly_the_non_dominated_full_points():
    archive = Archive(
        [
            trial(0, 100, 0.5),
            trial(1, 100, 0.6),  # dominates 0 (same cost, higher)
            trial(2, 200, 0.55),  # dominated by 1 (dearer, lower)
            trial(3, 300, 0.7),
            trial(4, 300, 0.7),  # equal to 3: the earlier is kept
            trial(5, 400, 0.9, fidelity=0.5),  # partial: no result
            trial(6, 500, None),  # failed
            trial(7, 600, 0.8),
        ]
    )
    assert [t.trial_id for t in archive.front()] == [1, 3, 7]
    assert [t.trial_id for t in archive.within(300)] == [0, 1, 2, 3, 4]
    assert archive.within(250).best().trial_id == 1  # type: ignore[union-attr]
    assert Archive().front() == []


def test_budgets_rotate_among_the_open_ones_and_each_plans_its_own_initial_trials(tmp_path):
    task = load_task(str(write_grid_task(tmp_path)))
    assert budgets_of(task) == [task.budget]
    assert budgets_of(task, [500, 100, 500]) == [100.0, 500.0]
    runs = {100.0: BudgetRun(), 250.0: BudgetRun(stop="done"), 500.0: BudgetRun()}
    assert rotation(BUDGETS) == [250.0, 100.0, 500.0]  # descending, the widest last
    assert next_target(BUDGETS, None, {}) == 250.0
    assert next_target(BUDGETS, None, runs) == 100.0  # 250 stopped
    assert next_target(BUDGETS, 100.0, runs) == 500.0
    assert next_target(BUDGETS, 500.0, runs) == 100.0
    assert next_target(BUDGETS, 100.0, dict.fromkeys(BUDGETS, BudgetRun(stop="x"))) is None

    def initial(t):  # one configuration per budget, the cheapest one shared
        cheap = Config.of({"retrieval": ("r-7b", 1), "qa": ("qa-3b", 1)})
        own = Config.of({"retrieval": ("r-7b", int(t.budget // 50)), "qa": ("qa-3b", 1)})
        return [(cheap, "cheap"), (own, "own")]

    plan = initial_plan(initial, task, BUDGETS)
    assert plan is not None and len(plan) == 4
    assert plan[0][1] == "budget 100: cheap" and plan[-1][1] == "budget 500: own"
    assert initial_plan(lambda t: None, task, BUDGETS) is None


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frontier")
    return folder, str(write_grid_task(folder / "task"))


def exhausted(folder: Path, task_file: str, thread: str, budgets: list[float]) -> dict:
    settings = {
        "proposer": "grid",
        "budgets": budgets,
        "batch_size": 200,
        "max_iterations": 100,
        "report_dir": str(folder / "reports"),
    }
    out = run_search(task_file, thread, folder / "runs.sqlite", settings)
    assert out.finished
    return out.values


def test_a_three_budget_search_finds_each_budget_s_one_budget_optimum(grid):
    folder, task_file = grid
    shared = exhausted(folder, task_file, "shared", BUDGETS)
    assert shared["stop_reason"].startswith("every budget stopped: 100: nothing new")
    archive = Archive.from_state(shared)
    task = load_task(task_file)
    for b in BUDGETS:
        alone = Archive.from_state(exhausted(folder, task_file, f"alone-{b:g}", [b]))
        best, own = archive.within(b).best(), alone.best()
        assert best is not None and own is not None
        assert (best.config, best.score) == (own.config, own.score), b
        # the shared search evaluated everything its budget's search did
        assert alone.evaluated().keys() <= archive.within(b).evaluated().keys()
        test = shared["frontier_tests"][label(b)]
        assert test["config"] == best.config.model_dump() and test["split"] == "test"
    assert shared["test_result"] == shared["frontier_tests"][label(max(BUDGETS))]
    front = archive.front()
    points = [(t.nominal_cost, t.score) for t in archive.scored().full()]
    for t in front:  # nothing evaluated is at least as cheap and at least as good, one strictly
        assert not any(
            c <= t.nominal_cost and s >= t.score and (c, s) != (t.nominal_cost, t.score)  # type: ignore[operator]
            for c, s in points
        )
    scores = [t.score or 0.0 for t in front]
    assert scores == sorted(set(scores))  # rising with cost
    assert {archive.within(b).best().trial_id for b in BUDGETS} <= {t.trial_id for t in front}  # type: ignore[union-attr]
    assert all(t.nominal_cost <= max(BUDGETS) + 1e-9 for t in archive.scored())
    assert task.budget == 1000  # the search ran at its widest budget, not the task's


def test_each_budget_gets_its_iterations_in_rotation_then_the_search_stops(grid):
    folder, task_file = grid
    settings = {"proposer": "random", "budgets": BUDGETS, "batch_size": 2, "max_iterations": 2}
    out = run_search(task_file, "turns", folder / "runs.sqlite", settings)
    v = out.values
    assert v["iteration"] == 6 and v["budget"] == 500.0  # 250, 100, 500, 250, 100, 500
    assert v["stop_reason"] == "every budget stopped: " + "; ".join(
        f"{label(b)}: maximum iterations reached (2 targeting it)" for b in BUDGETS
    )
    archive = Archive.from_state(v)
    turns = rotation(BUDGETS) * 2
    for k, b in enumerate(turns, start=1):  # each batch fits the budget it targeted
        assert all(t.nominal_cost <= b for t in archive.in_iteration(k).executed())
