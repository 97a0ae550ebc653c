"""Decide whether the search goes on; the reason it stops is recorded in the state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from langgraph.runtime import Runtime

from agenttts.archive import Trial, best_trial, scored
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common

#: Iterations in a row with nothing new to run before the space counts as exhausted.
EMPTY_LIMIT = 2


def stale_iterations(trials: Sequence[Trial], iteration: int) -> int:
    """Search iterations in a row, up to `iteration`, that did not raise the best score."""
    best: float | None = None
    for t in scored(trials):
        if t.iteration == 0 and (best is None or t.score > best):  # type: ignore[operator]
            best = t.score
    stale = 0
    for k in range(1, iteration + 1):
        top = max((t.score for t in scored(trials) if t.iteration == k), default=None)
        if top is not None and (best is None or top > best):
            best, stale = top, 0
        else:
            stale += 1
    return stale


def stop_reason(state: State, ctx: Context) -> str | None:
    trials = common.archive(state)
    iteration = int(state.get("iteration") or 0)
    best = best_trial(trials)
    executed = [t for t in trials if t.status != "rejected" and t.phase != "test"]
    stale = stale_iterations(trials, iteration)
    if ctx.target is not None and best is not None and best.score >= ctx.target:  # type: ignore[operator]
        return f"target reached: score {best.score:.4g} >= {ctx.target:g}"
    if ctx.max_trials is not None and len(executed) >= ctx.max_trials:
        return f"maximum trials reached ({len(executed)} >= {ctx.max_trials})"
    if iteration >= ctx.max_iterations:
        return f"maximum iterations reached ({iteration})"
    if ctx.patience is not None and stale >= ctx.patience:
        return f"patience exhausted: {stale} iterations without a better score"
    if int(state.get("empty_proposals") or 0) >= EMPTY_LIMIT:
        return (
            f"the proposer offered nothing new {EMPTY_LIMIT} iterations in a row (space exhausted?)"
        )
    return None


def check_stop(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = common.settings(state, runtime)
    trials = common.archive(state)
    return {
        "stop_reason": stop_reason(state, ctx),
        "stale_iterations": stale_iterations(trials, int(state.get("iteration") or 0)),
    }


def route(state: State) -> Literal["final_evaluation", "generate_guidelines"]:
    return "final_evaluation" if state.get("stop_reason") else "generate_guidelines"
