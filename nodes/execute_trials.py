"""Run the pending configurations on the training split and append them to the archive."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts.environment.task import Config
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common


def execute_trials(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = common.settings(state, runtime)
    task = common.get_task(state["task"])
    pending = state.get("pending") or []
    configs = [Config.model_validate(p["config"]) for p in pending]
    results = common.run_configs(task, configs, "train")
    trials = common.trials_from(
        task,
        results,
        first_id=len(state.get("archive") or []),
        iteration=int(state.get("iteration") or 0),
        proposer=ctx.proposer,
        rationales=[p.get("rationale") for p in pending],
    )
    return {"archive": trials, "pending": []}
