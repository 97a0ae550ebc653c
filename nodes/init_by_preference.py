"""The search's initial trials (the paper's initialisation by model preference, insight 1).

The proposer says which trials to run (`Proposer.initial_configs`; for the agenttts and insight
proposers, `insight.preferences.preference_configs`); they run as the init phase, and the proposer
then states which model each stage should explore further.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts import racing
from agenttts.archive import Archive
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.proposers.screening import screen


def init_by_preference(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = common.settings(state, runtime)
    task = common.get_task(state["task"])
    proposer = common.proposer_for(ctx)
    update: dict[str, Any] = {"iteration": 0, "settings": state.get("settings") or ctx.to_dict()}
    racing.check(task, ctx.racing)  # a racing search on an aggregate-only executor: input error
    planned = proposer.initial_configs(task)
    if planned is None:
        return update

    archive = Archive.from_state(state)
    screened = screen(task, [c for c, _ in planned], archive)
    del screened.accepted[ctx.max_trials or len(screened.accepted) :]  # a trial cap is a cap
    why = {c.key(): r for c, r in planned}
    first = archive.next_id
    # Under racing the initial trials run every item, in the race's order and scored per item:
    # they are the first incumbents the racing configurations are compared with, item by item.
    order = racing.plan(task, ctx.racing, ctx.seed).order if ctx.racing else None
    results = common.run_configs(
        task, screened.accepted, "train", items=order, earlier=archive.executed()
    )
    trials = common.trials_from(
        task,
        results,
        first_id=first,
        iteration=0,
        proposer=ctx.proposer,
        phase="init",
        rationales=[why[c.key()] for c in screened.accepted],
    )
    update["archive"] = trials

    view = {**state, "archive": [*(state.get("archive") or []), *trials]}
    prefs, error = common.guarded(
        proposer.summarize_preferences, common.proposal_context(task, view, ctx)
    )
    if error:
        update["agent_failures"] = common.failures(0, "init_by_preference", [error])
    if prefs is not None:
        update["preferences"] = dict(prefs.models)
        update["preference_notes"] = prefs.notes
        update["agent_usage"] = common.add_usage(state, prefs.usage)
    return update
