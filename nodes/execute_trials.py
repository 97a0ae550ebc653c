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

from collections.abc import Callable, Hashable
from typing import Any, Literal

from langgraph.runtime import Runtime

from agenttts import racing
from agenttts.archive import Archive
from agenttts.environment.executor import TrialResult
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common


def execute_trials(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = common.settings(state, runtime)
    task = common.get_task(state["task"])
    pending = state.get("pending") or []
    if ctx.racing is not None:
        return race_step(task, ctx, state, pending)
    archive = Archive.from_state(state)
    configs = [Config.model_validate(p["config"]) for p in pending]
    results = common.run_configs(task, configs, "train", earlier=archive.executed())
    return {
        "archive": common.trials_from(
            task,
            results,
            first_id=archive.next_id,
            iteration=int(state.get("iteration") or 0),
            proposer=ctx.proposer,
            rationales=[p.get("rationale") for p in pending],
        ),
        "pending": [],
    }


def race_step(
    task: Task, ctx: Context, state: State, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    """One checkpointed rung of a batch's race (`race_round`), as a node's update: the entries
    back in `pending` while any still races, else the batch's trials, in the order proposed."""
    assert ctx.racing is not None
    race = racing.plan(task, ctx.racing, ctx.seed)
    archive = state.get("archive") or []
    entries, running = race_round(task, race, archive, entries)
    if running:
        return {"pending": entries}
    results = [TrialResult.model_validate(e["prior"]) for e in entries]
    trials = common.trials_from(
        task,
        results,
        first_id=len(archive),
        iteration=int(state.get("iteration") or 0),
        proposer=ctx.proposer,
        rationales=[e.get("rationale") for e in entries],
    )
    incumbent = Archive.from_state({"archive": [*archive, *trials]}).best()
    return {
        "archive": with_estimates(task, trials, results, [incumbent] * len(results)),
        "pending": [],
    }


def with_estimates(
    task: Task,
    trials: list[dict[str, Any]],
    results: list[TrialResult],
    references: list[TrialResult | None],
) -> list[dict[str, Any]]:
    """The trials, a trial dropped from the race scored by its paired estimate against its
    reference (`racing.estimate`). New dicts: state values are never changed in place
    (`Archive.from_state` relies on it)."""
    out = []
    for t, r, ref in zip(trials, results, references, strict=True):
        guess = racing.estimate(r, ref, task.main_metric) if r.ok and r.fidelity < 1.0 else None
        out.append(t if guess is None else {**t, "score": guess})
    return out


def race_round(
    task: Task,
    race: racing.Race,
    archive: list[dict[str, Any]],
    entries: list[dict[str, Any]],
    groups: Callable[[Config, Config], Hashable | None] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One rung of a race: every entry ({config, rationale, prior?, done?}) still racing runs its
    next items, combined into its `prior`; the rule (`racing.stays`) marks the others `done`.
    Returns the entries and whether any still races. `archive`: the state's trial dicts.
    `groups`: the initial trials' race, where entries are compared in the groups it names
    (`racing.stays`), not with the incumbent; None: a search batch's race (incumbent and batch)."""
    trials = Archive.from_state({"archive": archive})
    configs = [Config.model_validate(e["config"]) for e in entries]
    priors = [TrialResult.model_validate(e["prior"]) if e.get("prior") else None for e in entries]
    in_flight = [p for p in priors if p is not None]  # their samples are drawn: a replay's cache
    results = [
        p if p is not None else TrialResult(config=c, split="train")
        for p, c in zip(priors, configs, strict=True)
    ]
    rungs: dict[tuple[int, ...], list[int]] = {}
    for i, prior in enumerate(priors):
        if not entries[i].get("done"):
            seen = prior.items_evaluated if prior else 0
            rungs.setdefault(race.next_items(seen), []).append(i)
    for items, which in rungs.items():
        ran = common.run_configs(
            task,
            [configs[i] for i in which],
            "train",
            items=items,
            earlier=[*trials.executed(), *in_flight],
        )
        for i, r in zip(which, ran, strict=True):
            prior = priors[i]
            results[i] = r if prior is None else prior.combined(r)

    now = [i for which in rungs.values() for i in which]
    if groups is None:
        full = [r for r in results if r.ok and r.fidelity >= 1.0]
        provisional = common.trials_from(task, full, first_id=len(archive), **_PROVISIONAL)
        incumbent = Archive.from_state({"archive": [*archive, *provisional]}).best()
        stay = racing.stays([results[i] for i in now], incumbent, task.main_metric)
    else:
        stay = racing.stays(
            [results[i] for i in now],
            None,
            task.main_metric,
            groups=lambda a, b: groups(configs[now[a]], configs[now[b]]),
        )
    running = {i for i, s in zip(now, stay, strict=True) if s}
    out = [
        {**e, "prior": r.model_dump(mode="json"), "done": i not in running}
        for i, (e, r) in enumerate(zip(entries, results, strict=True))
    ]
    return out, bool(running)


def race_to_end(
    task: Task,
    race: racing.Race,
    archive: list[dict[str, Any]],
    configs: list[Config],
    groups: Callable[[Config, Config], Hashable | None] | None = None,
) -> list[TrialResult]:
    """A whole race in one step (`race_round` until none races): each configuration's result,
    full or dropped, in the order given."""
    entries: list[dict[str, Any]] = [{"config": c.model_dump(mode="json")} for c in configs]
    running = bool(entries)
    while running:
        entries, running = race_round(task, race, archive, entries, groups)
    return [TrialResult.model_validate(e["prior"]) for e in entries]


#: Bookkeeping of the provisional trials `race_round` ranks (only their scores and costs count).
_PROVISIONAL: dict[str, Any] = {"iteration": 0, "proposer": "race"}


def route(state: State) -> Literal["execute_trials", "check_stop"]:
    """Configurations still in a race run their next rung; then the stop check."""
    return "execute_trials" if state.get("pending") else "check_stop"
