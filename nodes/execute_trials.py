"""Run the pending configurations on the training split and append them to the archive.

With racing on (`agenttts.racing`), each run of this node is one rung: every pending configuration
still in the race runs the next items of its race, the rung's result is combined with its earlier
rungs', and `pending` keeps what every configuration has so far (done: on the whole split, failed
or dropped from the race), so the node runs again (`route`) while any is still racing. Each rung is
its own checkpointed step: a kill loses at most the rung in flight, and nothing is evaluated or
recorded twice. When the batch's race is over its trials enter the archive together, in the order
they were proposed (as without racing), full or partial.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from agenttts import racing
from agenttts.archive import Archive, trials_from
from agenttts.derived import with_derived
from agenttts.environment import registry
from agenttts.environment.executor import TrialResult
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common


def execute_trials(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = common.settings(state, runtime)
    task = common.search_task(state, settings)
    pending = state.get("pending") or []
    if settings.racing is not None:
        return race_step(task, settings, state, pending)
    archive = Archive.from_state(state)
    configs = [Config.model_validate(p["config"]) for p in pending]
    results = registry.run_batch(task, configs, "train", earlier=archive.executed())
    trials = trials_from(
        task,
        results,
        first_id=archive.next_id,
        iteration=int(state.get("iteration") or 0),
        proposer=settings.proposer,
        rationales=[p.get("rationale") for p in pending],
    )
    return {
        "archive": with_derived(
            task, state.get("archive") or [], trials, enabled=settings.free_evaluations
        ),
        "pending": [],
    }


def race_step(
    task: Task, settings: Context, state: State, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    """One checkpointed rung of a batch's race (`racing.race_round`), as a node's update: the
    entries back in `pending` while any still races, else the batch's trials, in the order
    proposed."""
    assert settings.racing is not None
    race = racing.plan(task, settings.racing, settings.seed)
    archive = state.get("archive") or []
    entries, running = racing.race_round(task, race, archive, entries)
    if running:
        return {"pending": entries}
    results = [TrialResult.model_validate(e["prior"]) for e in entries]
    trials = trials_from(
        task,
        results,
        first_id=len(archive),
        iteration=int(state.get("iteration") or 0),
        proposer=settings.proposer,
        rationales=[e.get("rationale") for e in entries],
    )
    incumbent = Archive.from_state({"archive": [*archive, *trials]}).best()
    trials = racing.with_estimates(task, trials, results, [incumbent] * len(results))
    return {
        "archive": with_derived(task, archive, trials, enabled=settings.free_evaluations),
        "pending": [],
    }


def route(state: State) -> Literal["execute_trials", "check_stop"]:
    """Configurations still in a race run their next rung; then the stop check."""
    return "execute_trials" if state.get("pending") else "check_stop"
