"""Decide whether the search goes on; the reason it stops is recorded in the state."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

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


def stop_reason(state: State, settings: Context) -> str | None:
    archive = Archive.from_state(state)
    iteration = int(state.get("iteration") or 0)
    best = archive.best()
    executed = archive.executed()
    stale = stale_iterations(archive, iteration)
    if settings.target is not None and best is not None and best.score >= settings.target:  # type: ignore[operator]
        return f"target reached: score {best.score:.4g} >= {settings.target:g}"
    if settings.max_trials is not None and len(executed) >= settings.max_trials:
        return f"maximum trials reached ({len(executed)} >= {settings.max_trials})"
    if iteration >= settings.max_iterations:
        return f"maximum iterations reached ({iteration})"
    patience = None if proposer_class(settings.proposer).exhaustive else settings.patience
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
    return {
        "stop_reason": stop_reason(state, settings),
        "stale_iterations": stale_iterations(archive, int(state.get("iteration") or 0)),
    }


def route(state: State) -> Literal["final_evaluation", "generate_guidelines"]:
    return "final_evaluation" if state.get("stop_reason") else "generate_guidelines"
