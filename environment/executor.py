"""The one interface every executor implements: configurations in, metrics and cost out.

Nothing above this module knows which executor runs. A failure of one configuration is a result
with `error` set, never an exception that loses the rest of the batch. What only some executors
can do (an exhaustive optimum, call statistics, a subset of a split's items, a replayed sample
cache) is a declared protocol, tested with `isinstance`.

Search cost (`TrialResult.search_cost`, set by `run` for every result, `trial_search_cost` below):
what running the trial cost the search, in the paper's budget unit summed over the items evaluated
-- each stage's nominal per-query cost times the items, times the share of its samples that were
newly drawn (a sample the live cache, or a replay's emulated cache, `emulated_cache.py`, already
held costs nothing). A failed trial counts 0: what it drew stays in the cache for later trials.
The nominal figure, as if nothing were cached, stands beside it (`nominal_search_cost`); endpoint
calls and tokens too (`calls`, `prompt_tokens`, `completion_tokens`).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, TypeVar, final, runtime_checkable

from pydantic import BaseModel, Field, ValidationError

from agenttts.environment.space import (
    Config,
    config_cost,
    config_problems,
    fewer_samples,
    stage_costs,
)
from agenttts.environment.splits import Split
from agenttts.environment.task import Problem, Task
from agenttts.environment.user_files import validation_problems
from agenttts.errors import STOPS_THE_RUN, InputError

S = TypeVar("S", bound=BaseModel)


def parse_settings(model: type[S], settings: dict[str, Any]) -> tuple[S | None, list[Problem]]:
    """Validate an executor's `environment.settings` into its model, reporting field by field.

    Executors declare their settings as a model (extra="forbid" catches typos) and share this so
    every settings error reads the same way in `task validate`; strictly, as every schema read
    from a file (`user_files.STRICT`: a number is a number of its type).
    """
    try:
        return model.model_validate(settings, strict=True), []
    except ValidationError as e:
        problems = [
            Problem(field=f"environment.settings.{field}", message=message)
            for field, message in validation_problems(e, settings)
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
    item_ids: list[int] | None = Field(
        default=None,
        description="positions within the split evaluated, in order; None: the whole split",
    )
    item_scores: list[float] | None = Field(
        default=None, description="the main metric per item of `item_ids` (a subset was asked)"
    )
    split_size: int = Field(default=0, description="items in the split")
    fidelity: float = Field(default=1.0, description="share of the split's items evaluated")
    search_cost: float = Field(
        default=0.0,
        description="what running it cost the search: budget units x items, newly drawn samples",
    )

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def items_evaluated(self) -> int:
        return self.split_size if self.item_ids is None else len(self.item_ids)

    @property
    def nominal_search_cost(self) -> float:
        """`search_cost` as if no sample had been cached: the nominal cost x the items (0 for a
        failed trial, as there)."""
        return self.nominal_cost * self.items_evaluated if self.ok and self.stages else 0.0

    def combined(self, more: TrialResult) -> TrialResult:
        """This evaluation extended by `more` (the same configuration on further items of the
        split): metrics, measured costs and item scores weighted by items, tokens, calls, time and
        search cost summed. A failure in either fails the whole. Racing builds a configuration's
        full-split result this way, rung by rung, without evaluating any item twice."""
        if more.config != self.config or more.split != self.split:
            raise ValueError("only evaluations of one configuration on one split combine")
        a, b = self.items_evaluated, more.items_evaluated
        ids = [*(self.item_ids or []), *(more.item_ids or [])]
        scores = [*(self.item_scores or []), *(more.item_scores or [])]
        if len(set(ids)) != len(ids):
            raise ValueError("combined evaluations share items: an item would count twice")
        whole = len(ids) >= self.split_size
        stages = {
            name: _combined_stage(rep, more.stages.get(name), a, b)
            for name, rep in self.stages.items()
        }
        return self.model_copy(
            update={
                "metrics": {}
                if not (self.ok and more.ok)
                else {k: _mean(v, more.metrics.get(k, 0.0), a, b) for k, v in self.metrics.items()},
                "measured_cost": _weighted(self.measured_cost, more.measured_cost, a, b),
                "stages": stages,
                "prompt_tokens": self.prompt_tokens + more.prompt_tokens,
                "completion_tokens": self.completion_tokens + more.completion_tokens,
                "calls": self.calls + more.calls,
                "wall_time_s": self.wall_time_s + more.wall_time_s,
                "error": self.error or more.error,
                "source": more.source or self.source,
                "details": {**self.details, **more.details},
                "item_ids": ids,
                "item_scores": scores if len(scores) == len(ids) else None,
                "fidelity": 1.0 if whole else len(ids) / max(1, self.split_size),
                "search_cost": self.search_cost + more.search_cost,
            }
        )


def _mean(x: float, y: float, a: int, b: int) -> float:
    return (x * a + y * b) / max(1, a + b)


def _weighted(x: float | None, y: float | None, a: int, b: int) -> float | None:
    return None if x is None or y is None else _mean(x, y, a, b)


def _combined_stage(rep: StageReport, more: StageReport | None, a: int, b: int) -> StageReport:
    if more is None:
        return rep
    return StageReport(
        nominal_cost=rep.nominal_cost,
        measured_cost=_weighted(rep.measured_cost, more.measured_cost, a, b),
        prompt_tokens=rep.prompt_tokens + more.prompt_tokens,
        completion_tokens=rep.completion_tokens + more.completion_tokens,
        calls=rep.calls + more.calls,
        cached_samples=rep.cached_samples + more.cached_samples,
    )


def trial_search_cost(task: Task, result: TrialResult) -> float:
    """The one definition of a trial's search cost (see the module docstring): per stage, its
    nominal per-query cost x the items evaluated x the share of its samples newly drawn."""
    if not result.ok or not result.stages:
        return 0.0
    items = result.items_evaluated
    total = 0.0
    for name, report in result.stages.items():
        drawn = items * result.config[name].samples if name in result.config.root else 0
        new_share = 1.0 if drawn <= 0 else max(0.0, 1.0 - report.cached_samples / drawn)
        total += report.nominal_cost * items * new_share
    return total


@dataclass(frozen=True)
class BestFeasible:
    """The best observed score of a split over every feasible configuration (ties: the cheaper)."""

    score: float
    config: Config
    feasible: int  # how many feasible configurations were scored


@runtime_checkable
class HasOptimum(Protocol):
    """An executor that finds its exhaustive optimum without running every configuration
    through `run` (the simulated one sweeps its surface vectorised). Making the executor is
    enough: these need no `async with`."""

    def optimum(self, split: Split = "train") -> BestFeasible: ...

    def count_at_least(self, threshold: float, split: Split = "train") -> int:
        """How many feasible configurations score at least `threshold` (the optimum's basin)."""
        ...


@runtime_checkable
class HasItems(Protocol):
    """An executor that evaluates any subset of a split's items (`run(..., items=...)`) and
    reports each item's main metric (`TrialResult.item_scores`): what racing needs. The grid
    replay, which holds aggregate scores only, does not declare it."""

    def split_size(self, split: Split) -> int:
        """How many items the split holds (item positions are 0..n-1)."""
        ...


@runtime_checkable
class ReplaysCache(Protocol):
    """A replay that stands in for the live sample cache (every replay: `emulated_cache.py`):
    told the trials this search already ran, it counts a sample one of them drew as cached, as
    the live cache would have held it, so the search cost of a replayed search is what the live
    one paid."""

    def remember(self, earlier: Sequence[TrialResult]) -> None: ...


@dataclass(frozen=True)
class CallStats:
    """Requests an executor sent to its endpoints since it was made (retries included)."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    max_in_flight: int = 0  # the most requests in flight at once on one endpoint
    busy_s: float = 0.0  # summed request durations: busy_s / wall time = achieved concurrency


@runtime_checkable
class HasCallStats(Protocol):
    """An executor that calls endpoints (the live one); replays send nothing and do not declare
    it. The counts outlive `aclose`, so they can be read after `async with`."""

    def call_stats(self) -> CallStats: ...


class Executor(ABC):
    """Runs configurations of one task on a split; subclasses implement `_evaluate_batch`.

    Callers use `run` (final), inside `async with` (sync code: `registry.run_batch`). `run` checks
    each configuration against the task once: one with a problem is a failed result there, nothing
    spent, and never reaches the subclass. The valid ones go to `_evaluate_batch` together, under
    one guard: an exception it raises fails those configurations (recorded as their `error`; the
    batch is never lost), except a `ResumableStop` or a `UserCodeError` (`STOPS_THE_RUN`), which
    stop the run to be continued later.
    Executors that answer one configuration at a time derive from `PerConfigExecutor` instead and
    implement `_evaluate`.

    Making an executor holds no resource (servers, connections and files are opened on first
    use), so a caller may make one only to ask for a capability (`HasOptimum`); `aclose`, which
    `async with` always runs, releases what running opened.
    """

    kind: ClassVar[str]
    #: Settings under which this executor answers only from samples already drawn and fails a
    #: configuration that needs a new one (the live executors' `cache_only`). A replay needs
    #: none: its emulated cache charges what was not drawn (free evaluations, `agenttts.derived`).
    held_only: ClassVar[dict[str, Any]] = {}

    def __init__(self, task: Task, **overrides: Any):
        self.task = task
        self.settings = {**task.environment.settings, **overrides}

    @classmethod
    def check_task(cls, task: Task) -> list[Problem]:
        """Executor-specific checks run by `task validate` before anything is spent."""
        return []

    @classmethod
    def held_reductions(cls, task: Task, config: Config) -> list[Config]:
        """Configurations that the samples `config` drew may answer in full, each to be checked
        by running it under `held_only` (`agenttts.derived`): here fewer samples on the last
        stage, whose output feeds no later stage -- what the emulated cache holds after it."""
        return fewer_samples(task, config, task.stages[-1].name)

    @final
    async def run(
        self, configs: Sequence[Config], split: Split, items: Sequence[int] | None = None
    ) -> list[TrialResult]:
        """One result per configuration, in order; a failure is a result with `error` set.

        `items`: positions within the split (0..n-1) to evaluate, each once; None: every item.
        Only an executor that declares `HasItems` takes a subset (InputError otherwise, before
        anything runs). Every result gets its split size, fidelity and search cost here.
        """
        subset = self._check_items(split, items)
        results: list[TrialResult | None] = []
        valid: list[Config] = []
        for config in configs:
            problems = config_problems(self.task, config)
            if problems:
                results.append(TrialResult(config=config, split=split, error="; ".join(problems)))
            else:
                results.append(None)
                valid.append(config)
        evaluated = iter(await self._guarded(valid, split, subset) if valid else [])
        out = [r if r is not None else next(evaluated) for r in results]
        size = self.split_size(split) if isinstance(self, HasItems) else data_size(self.task, split)
        for r in out:
            r.split_size = size
            if subset is not None and r.item_ids is None:
                r.item_ids = list(subset)
            r.fidelity = 1.0 if r.item_ids is None else len(r.item_ids) / max(1, size)
            r.search_cost = trial_search_cost(self.task, r)
        return out

    async def run_held(
        self,
        configs: Sequence[Config],
        split: Split,
        items: Sequence[int] | None,
        *,
        sources: Sequence[Config],
    ) -> list[TrialResult]:
        """`run` under `held_only`, answered from what the runs of `sources` (trials of this
        search) drew: free evaluations (`agenttts.derived`) are a function of the search's own
        trials. Here, a replay: its emulated cache, told the search's trials (`ReplaysCache`),
        already charges every sample they did not draw, and the caller keeps what cost nothing."""
        return await self.run(configs, split, items)

    def _check_items(self, split: Split, items: Sequence[int] | None) -> tuple[int, ...] | None:
        if items is None:
            return None
        if not isinstance(self, HasItems):
            raise InputError(
                f"the {self.kind} executor holds aggregate scores only: it cannot evaluate a "
                "subset of a split's items (racing needs per-item results)"
            )
        subset = tuple(int(i) for i in items)
        n = self.split_size(split)
        bad = [i for i in subset if not 0 <= i < n]
        if bad or len(set(subset)) != len(subset) or not subset:
            raise InputError(
                f"items must be distinct positions in 0..{n - 1} of the {split} split "
                f"(got {len(subset)}, out of range: {bad[:5]})"
            )
        return subset

    @final
    async def _guarded(
        self, configs: Sequence[Config], split: Split, items: tuple[int, ...] | None
    ) -> list[TrialResult]:
        start = time.perf_counter()
        try:
            results = list(await self._evaluate_batch(configs, split, items))
            if len(results) != len(configs):
                raise RuntimeError(
                    f"{type(self).__name__} returned {len(results)} result(s) for "
                    f"{len(configs)} configuration(s)"
                )
        except STOPS_THE_RUN:
            raise
        except Exception as e:  # a failed trial is data for the search, not a crash
            return [self._failed(c, split, e, time.perf_counter() - start) for c in configs]
        return results

    def _failed(
        self, config: Config, split: Split, error: Exception, seconds: float = 0.0
    ) -> TrialResult:
        return TrialResult(
            config=config,
            split=split,
            nominal_cost=config_cost(self.task, config),
            error=f"{type(error).__name__}: {error}",
            wall_time_s=seconds,
        )

    @abstractmethod
    async def _evaluate_batch(
        self, configs: Sequence[Config], split: Split, items: tuple[int, ...] | None
    ) -> list[TrialResult]:
        """Results for configurations that passed the task's checks, one each, in order, on the
        split's `items` (positions; None: every item) -- a subset reaches only `HasItems` ones,
        which report `item_scores` aligned with `item_ids`."""

    def nominal_report(self, config: Config) -> dict[str, StageReport]:
        costs = stage_costs(self.task, config)
        return {name: StageReport(nominal_cost=c) for name, c in costs.items()}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release servers, connections or files (replay executors hold none)."""
        return None


class PerConfigExecutor(Executor):
    """An executor that answers one configuration at a time; subclasses implement `_evaluate`.

    The batch runs concurrently, each configuration under the same guard as a batch and timed on
    its own clock, so one failing configuration is its own result's `error` and the rest go on. A
    `ResumableStop` from one cancels the others (nothing more is spent) and stops the run.
    """

    async def _evaluate_batch(
        self, configs: Sequence[Config], split: Split, items: tuple[int, ...] | None
    ) -> list[TrialResult]:
        jobs = [asyncio.ensure_future(self._evaluate_one(c, split, items)) for c in configs]
        try:
            return list(await asyncio.gather(*jobs))
        except BaseException:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            raise

    @final
    async def _evaluate_one(
        self, config: Config, split: Split, items: tuple[int, ...] | None
    ) -> TrialResult:
        start = time.perf_counter()
        try:
            result = await self._evaluate(config, split, items)
        except STOPS_THE_RUN:
            raise
        except Exception as e:  # a failed trial is data for the search, not a crash
            result = self._failed(config, split, e)
        if not result.wall_time_s:
            result.wall_time_s = time.perf_counter() - start
        return result

    @abstractmethod
    async def _evaluate(
        self, config: Config, split: Split, items: tuple[int, ...] | None
    ) -> TrialResult:
        """The result of one configuration that passed the task's checks, on `items`."""


def data_size(task: Task, split: Split) -> int:
    """The split's size as the task declares it (aggregate executors: a grid row's split)."""
    return task.data.train_size if split == "train" else task.data.test_size
