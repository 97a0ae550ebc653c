"""Initialisation by model preference (insight 1), as the paper does it.

For each stage: the other stages run their largest model with one sample; every model of this stage
runs at the largest sample count its share of the budget allows. The proposer then states which
model each stage should explore further.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts.environment.task import Config, Task
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.proposers.screening import screen


def preference_configs(task: Task) -> list[tuple[Config, str]]:
    """The initial trials with why each was chosen; infeasible ones are left out.

    A stage's samples are capped by its budget share and by what the other stages leave of the
    total, so every configuration returned fits the budget; a model too large for its share even
    with one sample still gets that one sample when the total allows it.
    """
    shares = task.budget_shares()
    base = task.largest_single_sample_config()
    out: list[tuple[Config, str]] = []
    for stage in task.stages:
        others = sum(c for name, c in task.stage_costs(base).items() if name != stage.name)
        allowance = min(shares[stage.name] * task.budget, task.budget - others)
        for model in stage.model_names:
            samples = stage.max_samples_for(model, allowance)
            if samples < 1 and stage.cost(model, 1) <= task.budget - others + 1e-9:
                samples = 1  # over its share even alone, yet within the budget: try it once
            if samples < 1:
                continue
            config = Config.of({**base.root, stage.name: (model, samples)})
            out.append(
                (
                    config,
                    f"initialisation by model preference: stage {stage.name} with {model} at "
                    f"{samples} samples ({shares[stage.name]:.0%} of the budget), other stages at "
                    "their largest model with one sample",
                )
            )
    return out


def init_by_preference(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = common.settings(state, runtime)
    task = common.get_task(state["task"])
    proposer = common.proposer_for(ctx)
    update: dict[str, Any] = {"iteration": 0, "settings": state.get("settings") or ctx.to_dict()}
    if not proposer.uses_preference_init or 1 in proposer.settings.no_insights:
        return update

    planned = preference_configs(task)
    screened = screen(task, [c for c, _ in planned], common.archive(state))
    why = {c.key(): r for c, r in planned}
    first = len(state.get("archive") or [])
    results = common.run_configs(task, screened.accepted, "train")
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
