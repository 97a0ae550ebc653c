"""What every node needs: the task (cached per process), the settings, the proposer, the executor.

Nodes are sync (LangGraph runs them in threads; `langgraph dev` rejects blocking calls in async
nodes) and pure functions of the state plus the context, so a node re-run after a kill produces the
same update.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from agenttts.archive import Trial, load_trials
from agenttts.environment.executor import TrialResult
from agenttts.environment.registry import make_executor
from agenttts.environment.task import Config, Split, Task, load_task, resolve_task_path
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.proposers import make_proposer
from agenttts.proposers.base import AgentUsage, ProposalContext, Proposer

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


def settings(state: State, runtime: Runtime[Context] | None) -> Context:
    """The run's context; a run started without one (a bare Studio run) uses what the state
    recorded, else the defaults."""
    ctx = runtime.context if runtime is not None else None
    if isinstance(ctx, Context):
        return ctx
    if isinstance(ctx, dict):
        return Context.from_dict(ctx)
    return Context.from_dict(state.get("settings") or {})


def proposer_for(ctx: Context) -> Proposer:
    return make_proposer(ctx.proposer, ctx.proposer_settings())


def archive(state: State) -> list[Trial]:
    return load_trials(state.get("archive") or [])


def proposal_context(task: Task, state: State, ctx: Context) -> ProposalContext:
    return ProposalContext(
        task=task,
        archive=archive(state),
        iteration=int(state.get("iteration") or 0),
        batch_size=ctx.batch_size,
        guidelines=state.get("guidelines") or None,
        preferences=dict(state.get("preferences") or {}),
        preference_notes=state.get("preference_notes") or None,
    )


def add_usage(state: State, *usages: AgentUsage | None) -> dict[str, int]:
    total = AgentUsage.model_validate(state.get("agent_usage") or {})
    for u in usages:
        if u is not None:
            total = total + u
    return total.model_dump()


def failures(iteration: int, node: str, errors: Sequence[str]) -> list[dict[str, Any]]:
    return [{"iteration": iteration, "node": node, "error": e} for e in errors]


def run_configs(task: Task, configs: Sequence[Config], split: Split) -> list[TrialResult]:
    """Run a batch on a fresh executor in its own event loop (the node is sync)."""
    if not configs:
        return []

    async def go() -> list[TrialResult]:
        executor = make_executor(task)
        try:
            return await executor.run(list(configs), split)
        finally:
            await executor.aclose()

    return asyncio.run(go())


def trials_from(
    task: Task,
    results: Sequence[TrialResult],
    *,
    first_id: int,
    iteration: int,
    proposer: str,
    phase: str = "search",
    rationales: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(results):
        out.append(
            Trial.from_result(
                r,
                task,
                trial_id=first_id + i,
                iteration=iteration,
                proposer=proposer,
                phase=phase,  # type: ignore[arg-type]
                rationale=rationales[i] if rationales else None,
            ).dump()
        )
    return out


def guarded(call: Any, *args: Any) -> tuple[Any, str | None]:
    """Call a proposer method; any failure but an unreachable agent becomes a recorded error.

    An unreachable endpoint propagates: the run stops there, and the checkpoint before this node
    lets the same command resume it once the server is back.
    """
    try:
        return call(*args), None
    except Exception as e:
        from agenttts.llm import AgentUnreachable

        if isinstance(e, AgentUnreachable):
            raise
        return None, f"{type(e).__name__}: {e}"
