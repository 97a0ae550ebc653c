"""Ask the proposer for a batch, and hold it to the task's rules before anything runs.

Rejected configurations enter the archive with the reason (the agent sees them next time);
duplicates of archived trials are dropped; the rest wait in `pending`, so a kill before execution
does not ask the agent again.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts.archive import Trial
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.proposers.screening import screen


def propose_trials(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = common.settings(state, runtime)
    task = common.get_task(state["task"])
    iteration = int(state.get("iteration") or 0)
    trials = common.archive(state)
    proposal, error = common.guarded(
        common.proposer_for(ctx).propose, common.proposal_context(task, state, ctx)
    )
    update: dict[str, Any] = {}
    errors = [error] if error else list(proposal.errors)
    if errors:
        update["agent_failures"] = common.failures(iteration, "propose_trials", errors)
    configs = list(proposal.configs) if proposal is not None else []
    if proposal is not None:
        update["agent_usage"] = common.add_usage(state, proposal.usage)

    screened = screen(task, configs, trials)
    first = len(trials)
    rejected = [
        Trial.rejected(
            config, reason, trial_id=first + i, iteration=iteration, proposer=ctx.proposer
        ).dump()
        for i, (config, reason) in enumerate(screened.rejected)
    ]
    if rejected:
        update["archive"] = rejected
    accepted = screened.accepted[: ctx.batch_size]
    rationale = (proposal.rationale or None) if proposal is not None else None
    update["pending"] = [
        {"config": c.model_dump(mode="json"), "rationale": rationale} for c in accepted
    ]
    update["empty_proposals"] = 0 if accepted else int(state.get("empty_proposals") or 0) + 1
    return update
