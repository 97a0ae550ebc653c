"""The search's initial trials (the paper's initialisation by model preference, insight 1).

The proposer says which trials to run (`Proposer.initial_configs`; for the agenttts and insight
proposers, `insight.preferences.preference_configs`); they run as the init phase and are appended
to the archive by this node alone, so they are checkpointed before the agent is asked anything
(`init_preferences`): a hung or unreachable agent then loses no trial, and a resume does not
re-run them.
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


def init_trials(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
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
    # Under racing the initial trials do not race: they are insight 1's model comparison, where
    # one training item decides a stage's model, which a partial score cannot settle (racing them
    # lost optima in `agenttts bench`). They run every item, in the race's order and scored per
    # item: the first incumbents the racing configurations are compared with, item by item.
    order = racing.plan(task, ctx.racing, ctx.seed).order if ctx.racing else None
    results = common.run_configs(
        task, screened.accepted, "train", items=order, earlier=archive.executed()
    )
    update["archive"] = common.trials_from(
        task,
        results,
        first_id=archive.next_id,
        iteration=0,
        proposer=ctx.proposer,
        phase="init",
        rationales=[why[c.key()] for c in screened.accepted],
    )
    return update
