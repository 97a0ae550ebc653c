"""The proposer states which model each stage should explore further, from the initial trials
(`Proposer.summarize_preferences`; insight 1). A node of its own so that the trials it reads are
already checkpointed (`init_trials`): an unreachable agent stops the run here (exit 3) and the
resume asks again without re-running them.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts.archive import Archive
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common


def init_preferences(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    if not Archive.from_state(state).in_phase("init"):  # no initial phase: nothing to summarise
        return {}
    settings = common.settings(state, runtime)
    task = common.search_task(state, settings)
    proposer = common.proposer_for(settings)
    prefs, error = common.guarded(
        proposer.summarize_preferences, common.proposal_context(task, state, settings)
    )
    update: dict[str, Any] = {}
    if error:
        update["agent_failures"] = common.failures(0, "init_preferences", [error])
    if prefs is not None:
        update["preferences"] = dict(prefs.models)
        update["preference_notes"] = prefs.notes
        update["agent_usage"] = common.add_usage(state, prefs.usage)
        update |= common.reasoning(0, "init_preferences", prefs)
    return update
