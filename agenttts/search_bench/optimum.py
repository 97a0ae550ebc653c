"""The bench's yardstick: the exhaustive optimum of a task's training split.

A run "reaches" it at its first executed trial within the bench's tolerance of the optimum's score;
the optimum's test score and the cost of one full evaluation of it put the runs' numbers in scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agenttts.environment.executor import HasItems, HasOptimum
from agenttts.environment.registry import make_executor, run_batch
from agenttts.environment.space import Config, config_cost, count_feasible, iter_feasible
from agenttts.environment.splits import has_split
from agenttts.environment.task import Task
from agenttts.errors import InputError

#: Largest space the generic exhaustive optimum runs through an executor that cannot sweep its
#: feasible set (a live one; the replay and simulated executors sweep any size, `HasOptimum`).
ENUMERATE_LIMIT = 50_000


@dataclass
class TaskOptimum:
    """A task's training optimum as the bench measures runs against it."""

    score: float
    config: dict[str, Any]
    feasible: int
    test_score: float | None
    source: str
    targets: int  # feasible configurations within the tolerance of the optimum
    full_eval_cost: float = 0.0  # one evaluation of the optimum on the whole training split


def _test_score(task: Task, config: Config) -> float | None:
    """The optimum's test score; None for a train-only task (or a failed run)."""
    if not has_split(task.data, "test"):
        return None
    [test] = run_batch(task, [config], "test")
    return test.metrics.get(task.main_metric) if test.ok else None


def full_evaluation_cost(task: Task, config: Config) -> float:
    """One evaluation of `config` on the whole training split, in the search cost's unit."""
    executor = make_executor(task)  # holds nothing: asking for the split's size is free
    items = executor.split_size("train") if isinstance(executor, HasItems) else task.data.train_size
    return config_cost(task, config) * items


def exhaustive_optimum(task: Task, tolerance: float = 0.0) -> TaskOptimum:
    """The best training score over every feasible configuration, its test score, and how many
    configurations count as reaching it (within `tolerance`)."""
    executor = make_executor(task)  # holds nothing until it runs: asking for a capability is free
    if isinstance(executor, HasOptimum):  # replay and simulated: a vectorised, streamed sweep
        best = executor.optimum("train")
        return TaskOptimum(
            score=best.score,
            config=best.config.model_dump(mode="json"),
            feasible=best.feasible,
            test_score=_test_score(task, best.config),
            source=f"every feasible configuration, swept by the {task.environment.kind} executor",
            targets=executor.count_at_least(best.score - tolerance),
        )
    count = count_feasible(task)
    if count > ENUMERATE_LIMIT:
        raise InputError(
            f"task {task.name!r}: {count} feasible configurations and no fast optimum; the bench "
            f"enumerates at most {ENUMERATE_LIMIT} (use a simulated or smaller grid task)"
        )
    configs = list(iter_feasible(task))
    results = [
        r for r in run_batch(task, configs, "train") if r.ok and task.main_metric in r.metrics
    ]
    if not results:
        raise InputError(f"task {task.name!r}: no feasible configuration could be scored")
    top = max(results, key=lambda r: (r.metrics[task.main_metric], -r.nominal_cost))
    return TaskOptimum(
        score=top.metrics[task.main_metric],
        config=top.config.model_dump(mode="json"),
        feasible=count,
        test_score=_test_score(task, top.config),
        source=f"every feasible configuration run through the {task.environment.kind} executor",
        targets=sum(
            1
            for r in results
            if r.metrics[task.main_metric] >= top.metrics[task.main_metric] - tolerance - 1e-12
        ),
    )
