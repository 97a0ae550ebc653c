"""Start an iteration: the proposer distils the archive into search guidelines (insights 2, 3).

The previous guidelines, as they are in the state, go into the context: an edit made in Studio
between iterations is what the proposer refines.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts import frontier
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.nodes.check_stop import budget_runs


def generate_guidelines(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = common.settings(state, runtime)
    task = common.search_task(state, settings)
    iteration = int(state.get("iteration") or 0) + 1
    update: dict[str, Any] = {"iteration": iteration}
    budgets = common.budgets(state, settings)
    if len(budgets) > 1:  # a frontier search: this iteration targets one budget
        runs = budget_runs(state, settings)  # judged anew: raised limits reopen a budget
        update["budget"] = frontier.next_target(budgets, state.get("budget"), runs)
    proposal_ctx = common.proposal_context(task, {**state, **update}, settings)
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
