"""Whole-task checks that field validation cannot do, and filling models from the deployment.

Resolving is its own step that returns a filled copy: checking never changes the task it checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from agenttts.environment.space import BUDGET_TOLERANCE, cheapest_config, config_cost
from agenttts.environment.task import AGGREGATORS, Problem, Task
from agenttts.errors import InputError


def resolve_models(task: Task) -> tuple[Task, list[Problem]]:
    """A copy of `task` with parameter counts and endpoints filled from its deployment file, and
    the models that stay unknown (or the deployment file's own problem)."""
    from agenttts.environment.deployment import Deployment

    resolved = task.model_copy(deep=True)
    problems: list[Problem] = []
    deployment: Deployment | None = None
    if resolved.deployment:
        try:
            deployment = Deployment.load(resolved.resolve(resolved.deployment))
        except InputError as e:
            return resolved, [Problem(field="deployment", message=str(e))]
    for s in resolved.stages:
        for m in s.models:
            where = f"stages[{s.name}].models[{m.name}]"
            entry = deployment.models.get(m.name) if deployment else None
            if entry is not None:
                if m.params is None:
                    m.params = entry.params
                if m.endpoint is None:
                    m.endpoint = entry.base_url
            if m.kind == "llm" and m.params is None:
                known = f" (deployment knows: {', '.join(deployment.models)})" if deployment else ""
                problems.append(
                    Problem(
                        field=where,
                        message=f"unknown model {m.name!r}: no parameter count and "
                        f"not in a deployment file{known}",
                    )
                )
    return resolved, problems


def check_task(task: Task, unresolved: Sequence[Problem] = ()) -> list[Problem]:
    """Every problem of a (resolved) task; `unresolved` are `resolve_models`' problems, reported in
    their place among the others and holding back the budget check, which needs every model."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for s in task.stages:
        where = f"stages[{s.name}]"
        if s.name in seen:
            problems.append(Problem(field=where, message=f"duplicate stage name {s.name!r}"))
        seen.add(s.name)
        if s.aggregator not in AGGREGATORS:
            problems.append(
                Problem(
                    field=f"{where}.aggregator",
                    message=f"unknown aggregator {s.aggregator!r} "
                    f"(known: {', '.join(AGGREGATORS)})",
                )
            )
        names = [m.name for m in s.models]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(Problem(field=f"{where}.models", message=f"duplicate model {dup!r}"))
        for m in s.models:
            if m.kind != "llm" and m.fixed_cost is None:
                problems.append(
                    Problem(
                        field=f"{where}.models[{m.name}]",
                        message="a non-LLM choice needs fixed_cost",
                    )
                )
    if task.main_metric not in task.metrics:
        problems.append(
            Problem(
                field="main_metric",
                message=f"{task.main_metric!r} is not one of metrics {task.metrics}",
            )
        )
    shares = [s.budget_share for s in task.stages if s.budget_share is not None]
    if sum(shares) > 1 + 1e-9:
        problems.append(
            Problem(field="stages.budget_share", message="budget shares add up to more than 1")
        )
    if task.data.path is not None and not task.resolve(task.data.path).exists():
        problems.append(
            Problem(field="data.path", message=f"missing data file {task.resolve(task.data.path)}")
        )
    problems.extend(unresolved)
    if not any(p.field.startswith("stages") for p in problems):
        cheapest = cheapest_config(task)
        total = config_cost(task, cheapest)
        if total > task.budget + BUDGET_TOLERANCE:
            problems.append(
                Problem(
                    field="budget",
                    message=f"budget {task.budget:g} is below the cheapest configuration "
                    f"({total:.2f}: {cheapest.short()})",
                )
            )
        low = [b for b in task.budgets or () if total > b + BUDGET_TOLERANCE]
        if low:
            problems.append(
                Problem(
                    field="budgets",
                    message=f"budget(s) {', '.join(f'{b:g}' for b in low)} below the cheapest "
                    f"configuration ({total:.2f}: {cheapest.short()})",
                )
            )
    return problems
