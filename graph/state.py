"""The search's state: what a checkpoint holds, so a killed run resumes with nothing lost.

Everything is JSON-plain (dicts, lists, strings, numbers): Studio shows it as is and the checkpoint
serializer needs no registered types. Trials are `Trial.dump()` dicts; `Archive.from_state` reads
them back with the queries every node shares (see `agenttts.archive`).

The lists that grow with the search (`archive`, `guideline_log`, `agent_failures`,
`agent_reasoning`) are LangGraph
delta channels: a checkpoint stores only the items a step appended, and LangGraph rebuilds the
whole list from the thread's writes (`get_state()` returns it whole). The CLI's checkpointers also
drop the periodic whole-list snapshots LangGraph adds (`storage.GrowingLists`), so no checkpoint
grows with the thread and its storage grows linearly with its trials. To replace one from Studio
or the HTTP API, send `Overwrite(value=[...])` (JSON: ``{"__overwrite__": [...]}``) as with any
reducer channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypedDict, get_type_hints

from langgraph.channels.delta import DeltaChannel

#: Appends between LangGraph's full snapshots of a growing list, where it keeps them (the storage
#: of `langgraph dev`; the CLI's checkpointers drop them). A snapshot holds the whole list, so
#: frequent ones bring back quadratic growth; replay depth stays bounded anyway by LangGraph's cap
#: on supersteps between snapshots (5,000 supersteps: about 1,250 search iterations).
SNAPSHOT_EVERY = 1000


def append(current: list[Any], writes: Sequence[list[Any] | None]) -> list[Any]:
    """The delta channels' reducer: every list a step wrote, appended in order (a new list: the
    current one may be shared with a checkpoint). Batching-invariant, as `DeltaChannel` needs."""
    out = list(current)
    for items in writes:
        out.extend(items or ())
    return out


def appended() -> DeltaChannel[list[Any]]:
    return DeltaChannel(append, snapshot_frequency=SNAPSHOT_EVERY)


class InputState(TypedDict, total=False):
    """What a new run is started with."""

    task: str  # a task file path or a bundled task name; nodes load (and cache) the Task
    settings: dict[str, Any]  # the Context a run started with (recorded by the runner)


class State(InputState, total=False):
    archive: Annotated[list[dict[str, Any]], appended()]  # every trial, in trial_id order
    preferences: dict[str, str]  # insight 1: stage -> the model to explore further
    preference_notes: str
    guidelines: str  # the current search guidelines (editable mid-run in Studio)
    guideline_log: Annotated[list[dict[str, Any]], appended()]  # {iteration, text} per iteration
    iteration: int  # the current search iteration (0: initialisation)
    pending: list[dict[str, Any]]  # screened proposals awaiting execution: {config, rationale}
    stale_iterations: int  # iterations in a row without a better score
    empty_proposals: int  # iterations in a row whose proposals held nothing new to run
    agent_usage: dict[str, float]  # totals of AgentUsage over the run (calls, tokens, seconds)
    agent_failures: Annotated[list[dict[str, Any]], appended()]  # {iteration, node, error}
    #: a reasoning agent's thinking before each answer: {iteration, node, reasoning}
    agent_reasoning: Annotated[list[dict[str, Any]], appended()]
    #: A frontier search (several budgets, `agenttts.frontier`): the budget this iteration
    #: targets, and each budget's preferences (insight 1), stop bookkeeping and test result (by
    #: `frontier.label`).
    budget: float | None
    budget_preferences: dict[str, dict[str, Any]]  # {models, notes} per budget
    frontier: dict[str, dict[str, Any]]
    frontier_tests: dict[str, dict[str, Any]]
    stop_reason: str | None
    test_result: dict[str, Any] | None  # the best configuration's Trial dump on the test split
    report: dict[str, str] | None  # paths of the report files


#: The growing lists: the state's delta channels (`GrowingLists` in `storage` keeps any
#: checkpoint from holding one whole).
GROWING = frozenset(
    name
    for name, hint in get_type_hints(State, include_extras=True).items()
    if any(isinstance(m, DeltaChannel) for m in getattr(hint, "__metadata__", ()))
)
