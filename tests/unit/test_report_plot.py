"""The report's figure: scores with the best so far, cost per trial against the budget, and a
plain statement instead of empty axes when no trial succeeded; its JSON is standard JSON."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from agenttts.archive import Archive, Trial
from agenttts.environment.executor import TrialResult
from agenttts.environment.registry import run_batch
from agenttts.environment.space import config_cost, iter_feasible
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task
from agenttts.report import build_report, report_figure, write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task


def state(task: Task, results: list[TrialResult]) -> dict[str, Any]:
    trials = [
        Trial.from_result(r, task, trial_id=i, iteration=i // 4, proposer="x", phase="search")
        for i, r in enumerate(results)
    ]
    return {
        "task": task.source,
        "settings": {"proposer": "x"},
        "archive": [t.dump() for t in trials],
    }


def budget_lines(ax: Any, budget: float) -> list[Any]:
    return [ln for ln in ax.get_lines() if list(ln.get_ydata()) == [budget, budget]]


def test_scores_and_costs_against_the_budget(tmp_path):
    task = load_task(write_grid_task(tmp_path, budget=600))
    s = state(task, run_batch(task, list(iter_feasible(task))[:12], "train"))
    fig = report_figure(build_report(s, task=task), Archive.from_state(s))
    top, low = fig.axes
    assert top.axison and low.axison
    assert top.get_ylabel() == "em" and low.get_ylabel() == "cost (budget units)"
    assert len(budget_lines(low, 600.0)) == 1
    costs = low.collections[0].get_offsets()[:, 1]
    assert list(costs) == [t.nominal_cost for t in Archive.from_state(s).executed()]


def test_an_all_failed_run_says_so_instead_of_empty_axes(tmp_path):
    task = load_task(write_grid_task(tmp_path, budget=600))
    failed = [
        TrialResult(config=c, split="train", nominal_cost=config_cost(task, c), error="boom")
        for c in list(iter_feasible(task))[:5]
    ]
    s = state(task, failed)
    fig = report_figure(build_report(s, task=task), Archive.from_state(s))
    top, low = fig.axes
    assert (
        not top.axison and top.texts[0].get_text() == "no successful trial (5 executed, all failed)"
    )
    assert low.axison and len(budget_lines(low, 600.0)) == 1  # what they would have cost
    paths = write_report(s, tmp_path / "report", task=task)
    assert Path(paths["plot"]).read_bytes()[:4] == b"\x89PNG"
    assert "No trial succeeded." in Path(paths["markdown"]).read_text()


def test_the_report_json_holds_no_infinity(tmp_path):
    task = load_task(write_grid_task(tmp_path, budget=600))
    [r] = run_batch(task, list(iter_feasible(task))[:1], "train")
    r.measured_cost = math.inf
    paths = write_report(state(task, [r]), tmp_path / "report", task=task)

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    report = json.loads(Path(paths["json"]).read_text(), parse_constant=refuse)
    assert report["best"]["measured_cost"] is None


def test_points_sit_at_their_archive_ids_and_no_legend_covers_them(tmp_path):
    """The x axis counts trials as the archive does (from 0, rejected proposals keep their ids),
    and each panel's legend lies beside its axes, not over the points."""
    task = load_task(write_grid_task(tmp_path, budget=600))
    s = state(task, run_batch(task, list(iter_feasible(task))[:6], "train"))
    rejected = Trial.rejected(
        list(iter_feasible(task))[7], "over budget", trial_id=6, iteration=1, proposer="x"
    )
    more = run_batch(task, list(iter_feasible(task))[8:10], "train")
    s["archive"] += [rejected.dump()] + [
        Trial.from_result(r, task, trial_id=7 + i, iteration=1, proposer="x").dump()
        for i, r in enumerate(more)
    ]
    fig = report_figure(build_report(s, task=task), Archive.from_state(s))
    fig.canvas.draw()
    for ax in fig.axes:
        xs = list(ax.collections[0].get_offsets()[:, 0])
        assert xs == [0, 1, 2, 3, 4, 5, 7, 8]
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1  # beside the plotting area
