"""The one interface every executor implements: configurations in, metrics and cost out.

Nothing above this module knows which executor runs. A failure of one configuration is a result
with `error` set, never an exception that loses the rest of the batch.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field, ValidationError

from agenttts.environment.task import Config, Problem, Split, Task

S = TypeVar("S", bound=BaseModel)


def parse_settings(model: type[S], settings: dict[str, Any]) -> tuple[S | None, list[Problem]]:
    """Validate an executor's `environment.settings` into its model, reporting field by field.

    Executors declare their settings as a model (extra="forbid" catches typos) and share this so
    every settings error reads the same way in `task validate`.
    """
    try:
        return model.model_validate(settings), []
    except ValidationError as e:
        problems = [
            Problem(
                field=".".join(["environment.settings", *map(str, err["loc"])]),
                message=err["msg"],
            )
            for err in e.errors()
        ]
        return None, problems


class StageReport(BaseModel):
    """Per-stage cost of one trial: nominal from the task's lengths, measured from real usage."""

    nominal_cost: float
    measured_cost: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_samples: int = 0


class TrialResult(BaseModel):
    config: Config
    split: Split
    metrics: dict[str, float] = Field(default_factory=dict)
    nominal_cost: float = 0.0
    measured_cost: float | None = None
    stages: dict[str, StageReport] = Field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    wall_time_s: float = 0.0
    error: str | None = None
    source: str | None = Field(default=None, description="what answered: a grid row, the cache")
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


class Executor(ABC):
    """Runs configurations of one task on a split. Subclasses implement `_run_one` or `run`."""

    kind: ClassVar[str]

    def __init__(self, task: Task, **overrides: Any):
        self.task = task
        self.settings = {**task.environment.settings, **overrides}

    @classmethod
    def check_task(cls, task: Task) -> list[Problem]:
        """Executor-specific checks run by `task validate` before anything is spent."""
        return []

    async def run(self, configs: Sequence[Config], split: Split) -> list[TrialResult]:
        """Run a batch concurrently; each configuration's failure is captured in its result."""
        return list(await asyncio.gather(*(self._guarded(c, split) for c in configs)))

    async def _guarded(self, config: Config, split: Split) -> TrialResult:
        start = time.perf_counter()
        try:
            result = await self._run_one(config, split)
        except Exception as e:  # a failed trial is data for the search, not a crash
            result = TrialResult(
                config=config,
                split=split,
                nominal_cost=0.0 if self.task.config_problems(config) else self.task.cost(config),
                error=f"{type(e).__name__}: {e}",
            )
        if not result.wall_time_s:
            result.wall_time_s = time.perf_counter() - start
        return result

    @abstractmethod
    async def _run_one(self, config: Config, split: Split) -> TrialResult: ...

    def nominal_report(self, config: Config) -> dict[str, StageReport]:
        costs = self.task.stage_costs(config)
        return {name: StageReport(nominal_cost=c) for name, c in costs.items()}

    async def aclose(self) -> None:
        """Release servers, connections or files (replay executors hold none)."""
        return None
