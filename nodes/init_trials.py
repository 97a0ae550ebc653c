"""The search's initial trials (the paper's initialisation by model preference, insight 1).

The proposer says which trials to run (`Proposer.initial_configs`; for the agenttts and insight
proposers, `insight.preferences.preference_configs`); they run as the init phase and are appended
to the archive by this node alone, so they are checkpointed before the agent is asked anything
(`init_preferences`): a hung or unreachable agent then loses no trial, and a resume does not
re-run them. With racing on they race among themselves, per stage (`race_initial`). A proposer
that initialises progressively asks for more initial trials after each round
(`Proposer.more_initial`); every round runs within this node, so the whole initial phase is one
checkpointed step, as before.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agenttts import frontier, racing
from agenttts.archive import Archive, trials_from
from agenttts.derived import with_derived
from agenttts.environment import registry
from agenttts.environment.executor import TrialResult
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.proposers.screening import screen


def init_trials(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = common.settings(state, runtime)
    task = common.search_task(state, settings)
    proposer = common.proposer_for(settings)
    update: dict[str, Any] = {
        "iteration": 0,
        "settings": state.get("settings") or settings.record(),
    }
    racing.check(task, settings.racing)  # racing on an aggregate-only executor: input error
    base = common.get_task(state["task"])  # a frontier search plans at each of its budgets
    planned = frontier.initial_plan(proposer.initial_configs, base, common.budgets(state, settings))
    if planned is None:
        return update

    before = list(state.get("archive") or [])
    new: list[dict[str, Any]] = []
    left = settings.max_trials
    while planned and (left is None or left > 0):
        archive = Archive.from_state({"archive": [*before, *new]})
        screened = screen(task, [c for c, _ in planned], archive)
        del screened.accepted[left if left is not None else len(screened.accepted) :]
        if not screened.accepted:
            break
        why = {c.key(): r for c, r in planned}
        if settings.racing is None:
            results = registry.run_batch(
                task, screened.accepted, "train", earlier=archive.executed()
            )
        else:
            results = race_initial(task, settings, [*before, *new], screened.accepted)
        trials = trials_from(
            task,
            results,
            first_id=archive.next_id,
            iteration=0,
            proposer=settings.proposer,
            phase="init",
            rationales=[why[c.key()] for c in screened.accepted],
        )
        references = [racing.best_full_mate(task, r, results) for r in results]
        trials = racing.with_estimates(task, trials, results, references)
        new += with_derived(task, [*before, *new], trials, enabled=settings.free_evaluations)
        if left is not None:
            left -= len(trials)
        planned = proposer.more_initial(task, Archive.from_state({"archive": [*before, *new]}))
    update["archive"] = new
    return update


def race_initial(
    task: Task, settings: Context, archive: list[dict[str, Any]], configs: list[Config]
) -> list[TrialResult]:
    """The initial trials' race, among themselves: each compares one stage's choices with
    everything else equal, so trials are compared per stage (`racing.stage_apart`), never with
    another stage's trials, and each stage's best runs every item. Dropped trials are partial
    (their `fidelity`), scored by their paired estimate. The whole race is this one node's step,
    as the initial trials were without racing."""
    assert settings.racing is not None
    race = racing.plan(task, settings.racing, settings.seed)
    return racing.race_to_end(task, race, archive, configs, groups=racing.stage_apart)
