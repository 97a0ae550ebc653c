"""The proposer states which model each stage should explore further, from the initial trials
(`Proposer.summarize_preferences`; insight 1). A node of its own so that the trials it reads are
already checkpointed (`init_trials`): an unreachable agent stops the run here (exit 3) and the
resume asks again without re-running them.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts import frontier
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
    budgets = common.budgets(state, settings)
    # a frontier search: a preference per budget, each from its view (a model that does not fit
    # a budget is no preference there); the widest budget's is the thread's `preferences`
    targets: list[float | None] = list(budgets) if len(budgets) > 1 else [None]
    update: dict[str, Any] = {}
    per_budget: dict[str, dict[str, Any]] = {}
    errors, usages, thoughts = [], [], []
    for target in targets:
        ctx = common.proposal_context(task, {**state, "budget": target}, settings)
        prefs, error = common.guarded(proposer.summarize_preferences, ctx)
        errors += [error] if error else []
        if prefs is None:
            continue
        update["preferences"] = dict(prefs.models)
        update["preference_notes"] = prefs.notes
        usages.append(prefs.usage)
        thoughts += common.reasoning(0, "init_preferences", prefs).get("agent_reasoning", [])
        if target is not None:
            per_budget[frontier.label(target)] = {"models": prefs.models, "notes": prefs.notes}
    if errors:
        update["agent_failures"] = common.failures(0, "init_preferences", errors)
    if usages:
        update["agent_usage"] = common.add_usage(state, *usages)
    if thoughts:
        update["agent_reasoning"] = thoughts
    if per_budget:
        update["budget_preferences"] = per_budget
    return update
