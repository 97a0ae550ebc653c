"""What every node needs: the task (cached per process), the settings, the proposer.

Nodes run trials through `agenttts.environment.registry.run_batch` (called through the module, so
perf/ can wrap it) and race through `agenttts.racing`; this module only reads what they need.

Nodes are sync (LangGraph runs them in threads; `langgraph dev` rejects blocking calls in async
nodes) and pure functions of the state plus the context, so a node re-run after a kill produces the
same update.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from agenttts import frontier
from agenttts.archive import Archive
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task, resolve_task_path
from agenttts.errors import ResumableStop
from agenttts.graph.context import Context, conflict_error, setting_conflicts
from agenttts.graph.state import State
from agenttts.llm import AgentUsage
from agenttts.proposers import make_proposer
from agenttts.proposers.base import ProposalContext, Proposer

_TASKS: dict[tuple[str, float], Task] = {}
_TASKS_LOCK = threading.Lock()


def get_task(ref: str) -> Task:
    """Load a task once per process (and again when its file changes)."""
    path = resolve_task_path(ref)
    try:
        key = (str(Path(path).resolve()), Path(path).stat().st_mtime)
    except OSError:
        key = (str(path), 0.0)
    with _TASKS_LOCK:
        task = _TASKS.get(key)
        if task is None:
            task = _TASKS[key] = load_task(ref)
        return task


def budgets(state: Mapping[str, Any], settings: Context) -> list[float]:
    """The budgets this search covers (one unless it is a frontier search); a state that names
    no task yet has only those the settings name."""
    if "task" not in state:
        return sorted(set(settings.budgets))
    return frontier.budgets_of(get_task(state["task"]), settings.budgets)


def search_task(state: Mapping[str, Any], settings: Context) -> Task:
    """The task the search screens and runs against: at its widest budget (its own budget unless
    the settings name others: `agenttts.frontier`)."""
    return frontier.search_task(get_task(state["task"]), budgets(state, settings))


def settings(state: State, runtime: Runtime[Context] | None) -> Context:
    """The run's context, checked: every node reads it here, so a Studio or HTTP run with a bad
    setting stops at its first node with the CLI's message (InputError), before anything is spent.
    A run started without one (a bare Studio run) uses what the state recorded, else the
    defaults."""
    given = runtime.context if runtime is not None else None
    if isinstance(given, dict):
        given = Context.from_dict(given)
    recorded = state.get("settings")
    if not isinstance(given, Context):
        given = Context.from_dict(recorded or {})
    elif recorded:  # a run on a started thread (Studio, HTTP) may not change what is searched
        conflicts = setting_conflicts(recorded, given.to_dict())
        if conflicts:
            raise conflict_error(_thread_id(), conflicts)
    return given.validate()


def _thread_id() -> str:
    try:
        return str(get_config()["configurable"]["thread_id"])
    except (RuntimeError, KeyError):  # called outside a graph run (a node under test)
        return "?"


def proposer_for(settings: Context) -> Proposer:
    return make_proposer(settings.proposer, settings.proposer_settings())


def proposal_context(task: Task, state: Mapping[str, Any], settings: Context) -> ProposalContext:
    """What the proposer sees; in a frontier search, the task at the budget this iteration
    targets and the trials that fit it (`agenttts.frontier`)."""
    archive = Archive.from_state(state)
    target = state.get("budget")
    preferred = {"models": state.get("preferences"), "notes": state.get("preference_notes")}
    if target is not None:
        task, archive = frontier.at_budget(task, target), archive.within(target)
        preferred = (state.get("budget_preferences") or {}).get(frontier.label(target), preferred)
    return ProposalContext(
        task=task,
        archive=archive,
        iteration=int(state.get("iteration") or 0),
        batch_size=settings.batch_size,
        guidelines=state.get("guidelines") or None,
        preferences=dict(preferred["models"] or {}),
        preference_notes=preferred["notes"] or None,
    )


def add_usage(state: State, *usages: AgentUsage | None) -> dict[str, float]:
    recorded: Mapping[str, Any] = state.get("agent_usage") or {}
    total = AgentUsage(**recorded)
    for u in usages:
        if u is not None:
            total = total + u
    return asdict(total)


def failures(iteration: int, node: str, errors: Sequence[str]) -> list[dict[str, Any]]:
    return [{"iteration": iteration, "node": node, "error": e} for e in errors]


def reasoning(iteration: int, node: str, result: Any) -> dict[str, Any]:
    """A reasoning agent's thinking before its answer, for the state's `agent_reasoning` log
    (kept beside the answer the node records); nothing when the agent did not think aloud."""
    text = getattr(result, "reasoning", "") if result is not None else ""
    if not text:
        return {}
    return {"agent_reasoning": [{"iteration": iteration, "node": node, "reasoning": text}]}


def guarded(call: Any, *args: Any) -> tuple[Any, str | None]:
    """Call a proposer method; any failure but a resumable stop becomes a recorded error.

    A `ResumableStop` (an unreachable agent or endpoint) propagates: the run stops there, and the
    checkpoint before this node lets the same command resume it once the server is back.
    """
    start = time.perf_counter()
    try:
        result = call(*args)
    except ResumableStop:
        raise
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    usage = getattr(result, "usage", None)
    if isinstance(usage, AgentUsage) and usage.calls:  # an agent step records its time
        usage.seconds += time.perf_counter() - start
    return result, None
