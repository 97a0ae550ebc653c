"""Executor kinds by name, imported lazily so a replay run never imports the live stack, and the
one way sync code (nodes, the racing engine, commands, the bench) runs a batch.

It imports nothing from the environment at import time, so the task schema can name the kinds
(`EnvironmentSpec.kind`) from `EXECUTORS` without a cycle: a new executor is one file plus its
line here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agenttts.errors import InputError
from agenttts.plugins import load_named

if TYPE_CHECKING:
    from agenttts.environment.executor import Executor, TrialResult
    from agenttts.environment.space import Config
    from agenttts.environment.splits import Split
    from agenttts.environment.task import Task

EXECUTORS: dict[str, str] = {
    "grid": "agenttts.environment.replay_grid:GridReplayExecutor",
    "samples": "agenttts.environment.replay_samples:SamplesReplayExecutor",
    "live": "agenttts.environment.live.python_pipeline:LiveExecutor",
    "python": "agenttts.environment.live.python_pipeline:PythonExecutor",
    "chain": "agenttts.environment.live.chain:ChainExecutor",
    "simulated": "agenttts.environment.simulated:SimulatedExecutor",
}


def executor_class(kind: str) -> type[Executor]:
    return load_named(EXECUTORS, kind, "environment kind")


def make_executor(task: Task, **overrides: Any) -> Executor:
    """The task's executor; making one holds nothing, `async with` releases what running opens."""
    return executor_class(task.environment.kind)(task, **overrides)


def run_batch(
    task: Task,
    configs: Sequence[Config],
    split: Split,
    *,
    items: Sequence[int] | None = None,
    earlier: Sequence[TrialResult] = (),
    held_by: Sequence[Config] | None = None,
    **overrides: Any,
) -> list[TrialResult]:
    """Run a batch from sync code: a fresh executor in its own event loop, closed whatever happens.

    `items`: the split's item positions to evaluate (None: all; see `Executor.run`). `earlier`:
    the trials the search already ran, which a `ReplaysCache` executor counts as its cache.
    `held_by`: answer from what these configurations' runs drew alone (`Executor.run_held`; give
    the executor's `held_only` settings as overrides).
    (Nodes are sync: LangGraph runs them in threads, where no event loop is running.)
    """
    from agenttts.environment.executor import ReplaysCache
    from agenttts.environment.splits import NO_TEST_SPLIT, has_split

    if not configs:
        return []
    if not has_split(task.data, split):
        raise InputError(f"task {task.name!r}: {NO_TEST_SPLIT}; nothing runs on split {split!r}")

    async def go() -> list[TrialResult]:
        async with make_executor(task, **overrides) as executor:
            if earlier and isinstance(executor, ReplaysCache):
                executor.remember(earlier)
            if held_by is not None:
                return await executor.run_held(configs, split, items, sources=held_by)
            return await executor.run(configs, split, items)

    return asyncio.run(go())
