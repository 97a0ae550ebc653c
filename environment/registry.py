"""Executor kinds by name, imported lazily so a replay run never imports the live stack."""

from __future__ import annotations

from typing import Any

from agenttts.environment.executor import Executor
from agenttts.environment.task import Task
from agenttts.plugins import load_named

EXECUTORS: dict[str, str] = {
    "grid": "agenttts.environment.replay_grid:GridReplayExecutor",
    "samples": "agenttts.environment.replay_samples:SamplesReplayExecutor",
    "live": "agenttts.environment.live.executor:LiveExecutor",
    "simulated": "agenttts.environment.simulated:SimulatedExecutor",
}


class UnknownExecutor(ValueError):
    pass


def executor_class(kind: str) -> type[Executor]:
    return load_named(EXECUTORS, kind, "environment kind", UnknownExecutor)


def make_executor(task: Task, **overrides: Any) -> Executor:
    return executor_class(task.environment.kind)(task, **overrides)
