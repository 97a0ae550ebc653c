"""The search's state: what a checkpoint holds, so a killed run resumes with nothing lost.

Everything is JSON-plain (dicts, lists, strings, numbers): Studio shows it as is and the checkpoint
serializer needs no registered types. Trials are `Trial.dump()` dicts (see `agenttts.archive`).
Append-only lists use `operator.add`; to replace one from Studio, send `Overwrite(value=[...])`.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class InputState(TypedDict, total=False):
    """What a new run is started with."""

    task: str  # a task file path or a bundled task name; nodes load (and cache) the Task
    settings: dict[str, Any]  # the Context a run started with (recorded by the runner)


class State(InputState, total=False):
    archive: Annotated[list[dict[str, Any]], operator.add]  # every trial, in trial_id order
    preferences: dict[str, str]  # insight 1: stage -> the model to explore further
    preference_notes: str
    guidelines: str  # the current search guidelines (editable mid-run in Studio)
    guideline_log: Annotated[list[dict[str, Any]], operator.add]  # {iteration, text} per iteration
    iteration: int  # the current search iteration (0: initialisation)
    pending: list[dict[str, Any]]  # screened proposals awaiting execution: {config, rationale}
    stale_iterations: int  # iterations in a row without a better score
    empty_proposals: int  # iterations in a row whose proposals held nothing new to run
    agent_usage: dict[str, int]  # totals of AgentUsage over the run
    agent_failures: Annotated[list[dict[str, Any]], operator.add]  # {iteration, node, error}
    stop_reason: str | None
    test_result: dict[str, Any] | None  # the best configuration's Trial dump on the test split
    report: dict[str, str] | None  # paths of the report files
