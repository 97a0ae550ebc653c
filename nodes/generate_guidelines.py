"""Start an iteration: the proposer distils the archive into search guidelines (insights 2, 3).

The previous guidelines, as they are in the state, go into the context: an edit made in Studio
between iterations is what the proposer refines.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common


def generate_guidelines(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = common.settings(state, runtime)
    task = common.get_task(state["task"])
    iteration = int(state.get("iteration") or 0) + 1
    update: dict[str, Any] = {"iteration": iteration}
    proposal_ctx = common.proposal_context(task, {**state, "iteration": iteration}, settings)
    result, error = common.guarded(common.proposer_for(settings).guidelines, proposal_ctx)
    errors = [error] if error else list(getattr(result, "errors", []) or [])
    if errors:
        update["agent_failures"] = common.failures(iteration, "generate_guidelines", errors)
    if result is not None:
        update["agent_usage"] = common.add_usage(state, result.usage)
        update |= common.reasoning(iteration, "generate_guidelines", result)
        if result.text:
            update["guidelines"] = result.text
            update["guideline_log"] = [{"iteration": iteration, "text": result.text}]
    return update
