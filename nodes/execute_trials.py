"""Run the pending configurations on the training split and append them to the archive.

With racing on (`agenttts.racing`), each run of this node is one rung: every pending configuration
still in the race runs the next items of its race, the rung's result is combined with its earlier
rungs', and `pending` keeps what every configuration has so far (done: on the whole split, failed
or dropped from the race), so the node runs again (`route`) while any is still racing. Each rung is
its own checkpointed step: a kill loses at most the rung in flight, and nothing is evaluated or
recorded twice. When the batch's race is over its trials enter the archive together, in the order
they were proposed (as without racing), full or partial.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from agenttts import racing
from agenttts.archive import Archive
from agenttts.environment.executor import TrialResult
from agenttts.environment.space import Config
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common


def execute_trials(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = common.settings(state, runtime)
    task = common.get_task(state["task"])
    pending = state.get("pending") or []
    archive = Archive.from_state(state)
    configs = [Config.model_validate(p["config"]) for p in pending]
    trials = {
        "first_id": archive.next_id,
        "iteration": int(state.get("iteration") or 0),
        "proposer": ctx.proposer,
    }
    if ctx.racing is None:
        results = common.run_configs(task, configs, "train", earlier=archive.executed())
        rationales = [p.get("rationale") for p in pending]
        return {
            "archive": common.trials_from(task, results, **trials, rationales=rationales),
            "pending": [],
        }

    race = racing.plan(task, ctx.racing, ctx.seed)
    priors = [TrialResult.model_validate(p["prior"]) if p.get("prior") else None for p in pending]
    in_flight = [p for p in priors if p is not None]  # their samples are drawn: a replay's cache
    results: list[TrialResult] = [
        p if p is not None else TrialResult(config=c, split="train")
        for p, c in zip(priors, configs, strict=True)
    ]
    rungs: dict[tuple[int, ...], list[int]] = {}
    for i, prior in enumerate(priors):
        if not pending[i].get("done"):
            seen = prior.items_evaluated if prior else 0
            rungs.setdefault(race.next_items(seen), []).append(i)
    for items, which in rungs.items():
        ran = common.run_configs(
            task,
            [configs[i] for i in which],
            "train",
            items=items,
            earlier=[*archive.executed(), *in_flight],
        )
        for i, r in zip(which, ran, strict=True):
            prior = priors[i]
            results[i] = r if prior is None else prior.combined(r)

    racing_now = [i for which in rungs.values() for i in which]
    full = [results[i] for i in range(len(results)) if results[i].ok and results[i].fidelity >= 1]
    incumbent = Archive.from_state(
        {"archive": [*(state.get("archive") or []), *common.trials_from(task, full, **trials)]}
    ).best()
    stay = racing.stays([results[i] for i in racing_now], incumbent, task.main_metric)
    running = {i for i, s in zip(racing_now, stay, strict=True) if s}
    entries = [
        {**p, "prior": r.model_dump(mode="json"), "done": i not in running}
        for i, (p, r) in enumerate(zip(pending, results, strict=True))
    ]
    if running:  # the batch's race goes on: its trials enter the archive together, in order
        return {"pending": entries}
    return {
        "archive": common.trials_from(
            task, results, **trials, rationales=[p.get("rationale") for p in pending]
        ),
        "pending": [],
    }


def route(state: State) -> Literal["execute_trials", "check_stop"]:
    """Configurations still in a race run their next rung; then the stop check."""
    return "execute_trials" if state.get("pending") else "check_stop"
