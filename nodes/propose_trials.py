"""Ask the proposer for a batch, and hold it to the task's rules before anything runs.

Rejected configurations enter the archive with the reason (the agent sees them next time);
duplicates of archived trials are dropped; the rest wait in `pending`, so a kill before execution
does not ask the agent again. A trial cap is a cap: the batch asked for is what the cap leaves, and
once nothing is left no proposer is asked at all. Each pending trial carries its rationale: its
own where the proposal gives one (repaired to fit the budget, topped up by the insight proposer:
`Proposal.notes`), else the batch's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from agenttts import frontier
from agenttts.archive import Archive, Trial
from agenttts.environment.space import Config
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.proposers.base import Proposal
from agenttts.proposers.screening import screen


def room_left(settings: Context, archive: Archive) -> int:
    """How many trials this iteration may run: a batch, or what the trial cap leaves of it."""
    if settings.max_trials is None:
        return settings.batch_size
    return max(0, min(settings.batch_size, settings.max_trials - len(archive.executed())))


def rationale_of(proposal: Proposal | None, config: Config) -> str | None:
    """A trial's rationale: its own where the proposal has one, else the batch's."""
    if proposal is None:
        return None
    return proposal.notes.get(config.key()) or proposal.rationale or None


def propose_trials(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = common.settings(state, runtime)
    task = common.search_task(state, settings)
    iteration = int(state.get("iteration") or 0)
    archive = Archive.from_state(state)
    room = room_left(settings, archive)
    if room == 0:
        return {"pending": []}
    proposal_ctx = replace(common.proposal_context(task, state, settings), batch_size=room)
    proposal, error = common.guarded(common.proposer_for(settings).propose, proposal_ctx)
    update: dict[str, Any] = {}
    errors = [error] if error else list(proposal.errors)
    if errors:
        update["agent_failures"] = common.failures(iteration, "propose_trials", errors)
    configs = list(proposal.configs) if proposal is not None else []
    if proposal is not None:
        update["agent_usage"] = common.add_usage(state, proposal.usage)
        update |= common.reasoning(iteration, "propose_trials", proposal)

    screened = screen(task, configs, archive)
    first = archive.next_id
    rejected = [
        Trial.rejected(
            config, reason, trial_id=first + i, iteration=iteration, proposer=settings.proposer
        ).dump()
        for i, (config, reason) in enumerate(screened.rejected)
    ]
    if rejected:
        update["archive"] = rejected
    accepted = screened.accepted[:room]
    update["pending"] = [
        {"config": c.model_dump(mode="json"), "rationale": rationale_of(proposal, c)}
        for c in accepted
    ]
    update["empty_proposals"] = 0 if accepted else int(state.get("empty_proposals") or 0) + 1
    target = state.get("budget")
    if target is not None:  # a frontier search: the targeted budget's own count
        runs = frontier.runs_of(state, common.budgets(state, settings))
        update["frontier"] = frontier.dumped(frontier.with_empty(runs, target, not accepted))
    return update
