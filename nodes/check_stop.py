"""Decide whether the search goes on; the reason it stops is recorded in the state."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from agenttts import frontier
from agenttts.archive import Archive
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.proposers import proposer_class

#: Iterations in a row with nothing new to run before the space counts as exhausted.
EMPTY_LIMIT = 2


def stale_iterations(archive: Archive, iteration: int) -> int:
    """Search iterations in a row, up to `iteration`, that did not raise the best score."""
    tops = archive.top_by_iteration()  # one pass over the archive, not one per iteration
    best = tops.get(0)
    stale = 0
    for k in range(1, iteration + 1):
        top = tops.get(k)
        if top is not None and (best is None or top > best):
            best, stale = top, 0
        else:
            stale += 1
    return stale


def patience_of(settings: Context) -> int | None:
    """The patience that applies: none for an exhaustive proposer (grid)."""
    return None if proposer_class(settings.proposer).exhaustive else settings.patience


def budget_runs(state: State, settings: Context) -> dict[float, frontier.BudgetRun]:
    """A frontier search's budgets as recorded, each judged by its stop rule under `settings`
    (raised limits reopen a budget)."""
    archive = Archive.from_state(state)
    runs = frontier.runs_of(state, common.budgets(state, settings))
    return frontier.judged(
        archive,
        runs,
        patience=patience_of(settings),
        goal=settings.target,
        max_iterations=settings.max_iterations,
    )


def trial_cap(state: State, settings: Context) -> str | None:
    """The trial cap: a limit on the whole search, whatever its budgets."""
    executed = Archive.from_state(state).executed()
    if settings.max_trials is not None and len(executed) >= settings.max_trials:
        return f"maximum trials reached ({len(executed)} >= {settings.max_trials})"
    return None


def stop_reason(state: State, settings: Context) -> str | None:
    if len(common.budgets(state, settings)) > 1:  # a frontier search: its rules per budget
        runs = budget_runs(state, settings)
        done = all(r.stop is not None for r in runs.values())
        return trial_cap(state, settings) or (frontier.stop_summary(runs) if done else None)
    archive = Archive.from_state(state)
    iteration = int(state.get("iteration") or 0)
    best = archive.best()
    stale = stale_iterations(archive, iteration)
    if settings.target is not None and best is not None and best.score >= settings.target:  # type: ignore[operator]
        return f"target reached: score {best.score:.4g} >= {settings.target:g}"
    cap = trial_cap(state, settings)
    if cap is not None:
        return cap
    if iteration >= settings.max_iterations:
        return f"maximum iterations reached ({iteration})"
    patience = patience_of(settings)
    if patience is not None and stale >= patience:
        return f"patience exhausted: {stale} iterations without a better score"
    if int(state.get("empty_proposals") or 0) >= EMPTY_LIMIT:
        return (
            f"the proposer offered nothing new {EMPTY_LIMIT} iterations in a row (space exhausted?)"
        )
    return None


def check_stop(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = common.settings(state, runtime)
    archive = Archive.from_state(state)
    iteration = int(state.get("iteration") or 0)
    update: dict[str, Any] = {"stale_iterations": stale_iterations(archive, iteration)}
    budgets = common.budgets(state, settings)
    if len(budgets) > 1:  # a frontier search: this iteration's counts per budget first
        runs = frontier.runs_of(state, budgets)
        runs = frontier.advanced(
            archive, budgets, runs, target=state.get("budget"), iteration=iteration
        )
        state = {**state, "frontier": frontier.dumped(runs)}
        update["frontier"] = frontier.dumped(budget_runs(state, settings))
    return {"stop_reason": stop_reason(state, settings), **update}


def route(state: State) -> Literal["final_evaluation", "generate_guidelines"]:
    return "final_evaluation" if state.get("stop_reason") else "generate_guidelines"
