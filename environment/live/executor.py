"""Running a user's pipeline as the environment: one trial = every item of a split, scored.

A `Program` says what the items are, how one item is predicted given the trial's stage handles,
and how a prediction is scored; `kind: python` (a user's function or LangGraph graph) and
`kind: chain` (stages declared in YAML) are programs. This executor runs one program per
configuration: every item concurrently with the trial's `Stages`, each item under a timeout, then
the task's metrics averaged over the items, the tokens each stage really drew, and the nominal and
measured cost. Racing asks for a subset of the split's items (`HasItems`): the same run on those
items only, each item's main metric reported.

User code is untrusted input to the search. An exception in one item (or its timeout) is recorded
on that item, which scores 0; the trial goes on and reports the count and the first error; a trial
whose items mostly fail (more than `max_failed_share`) is a failed trial with that reason. A
request that keeps failing while its endpoint answers others (a prompt the server chokes on) is
the item's own failure too. What is not the item's fault fails the trial at once (a sample missing
in a cache-only replay, a stage the task does not declare), and an endpoint that answers nothing
stops the run resumably. Samples already drawn stay in the cache whatever happens, so nothing is
paid twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import threading
import time
import traceback
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import Field

from agenttts.environment.budget import TokenUsage, measured_stage_budget
from agenttts.environment.executor import (
    CallStats,
    PerConfigExecutor,
    StageReport,
    TrialResult,
    parse_settings,
)
from agenttts.environment.live.sampler import Sampler, SamplerSettings
from agenttts.environment.live.scoring import ScoringSettings, gold_of
from agenttts.environment.live.stages import (
    ITEM_CLOCK,
    ITEM_OUTPUTS,
    ItemClock,
    Stages,
    TrialRun,
    split_settings,
)
from agenttts.environment.live.stall import LoopBlocked, StallWatch
from agenttts.environment.space import Config, config_cost, fewer_samples
from agenttts.environment.splits import Split
from agenttts.environment.task import ModelChoice, Problem, Task
from agenttts.errors import InputError, ResumableStop, TrialError, UserCodeError
from agenttts.progress import ItemProgress


async def _within_own_time(
    work: Awaitable[Any], timeout: float, clock: ItemClock, stalled: Callable[[], float] = float
) -> Any:
    """`work`'s result, or TimeoutError once its own time (`clock`: waits for samples do not
    count, nor `stalled()` time the loop was held by some item) passes `timeout`: a hung pipeline
    is stopped, a long queue at an endpoint is not."""
    ITEM_CLOCK.set(clock)  # this item's context: its draws, and threads it starts, see it
    held = stalled()
    job = asyncio.ensure_future(work)
    try:
        while True:
            left = timeout - clock.own_seconds() + (stalled() - held)
            if left <= 0:
                raise TimeoutError
            done, _ = await asyncio.wait({job}, timeout=left)
            if done:
                return job.result()
    finally:
        if not job.done():
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        elif not job.cancelled():
            job.exception()  # retrieved: its failure, when this item was cancelled, is not news


class PipelineSettings(SamplerSettings, ScoringSettings):
    """`environment.settings` shared by the pipeline kinds: endpoints and cache, scoring, items."""

    item_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="one item's pipeline code (its waits for samples, bounded by the request "
        "timeout and retries, do not count): a hung pipeline is stopped after this",
    )
    max_failed_share: float = Field(
        default=0.5, ge=0, le=1, description="more items failing than this fails the trial"
    )
    record_items: bool = Field(
        default=False,
        description="keep each item's prediction, gold, scores and stage outputs in the result "
        "(`details.records`: `evaluate --items`, `show THREAD TRIAL`); a search keeps none",
    )


@dataclass
class ItemOutcome:
    """One item's end: its scores, or why it failed (its own fault only; else the trial fails),
    with where its code raised (`None` for a timeout), and what it predicted from which samples."""

    scores: dict[str, float] | None = None
    error: str | None = None
    raised_at: str | None = None
    timed_out: bool = False  # its own time ran out, or its code held the loop too long
    prediction: Any = None
    outputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.scores is None


def raised_at(e: BaseException) -> str:
    """The exception's type and the line that raised it: items failing with the same one share a
    bug (their messages may differ, e.g. naming the item)."""
    frames = traceback.extract_tb(e.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return f"{type(e).__name__} at {where}"


def _plain(value: Any) -> Any:
    """A prediction as JSON holds it (its repr when it is no JSON value)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return repr(value)


class Program(Protocol):
    """What a pipeline kind provides to the executor."""

    def items(self, split: Split) -> list[dict[str, Any]]: ...

    async def predict(self, item: dict[str, Any], stages: Stages) -> Any: ...

    async def score(self, prediction: Any, item: dict[str, Any]) -> dict[str, float]: ...


class _DaemonThreads(concurrent.futures.ThreadPoolExecutor):
    """The trial loop's default executor: one daemon thread per call, never joined.

    Sync user code (a sync pipeline, LangGraph's sync nodes) runs in the loop's default executor.
    One that hangs past its item's timeout is abandoned; with the stock pool, `asyncio.run` and
    interpreter exit would wait for it forever.
    """

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:
                future.set_exception(e)

        threading.Thread(target=work, name="agenttts-pipeline", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run sync user code in a daemon thread, with the caller's context (the trial's handles)."""
    ctx = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(None, ctx.run, fn, *args)


class PipelineExecutor(PerConfigExecutor):
    """A live executor whose pipeline is a `Program`; subclasses say how to make one."""

    settings_model: ClassVar[type[PipelineSettings]] = PipelineSettings
    held_only: ClassVar[dict[str, Any]] = {"cache_only": True}

    def __init__(self, task: Task, **overrides: Any):
        super().__init__(task, **overrides)
        parsed, problems = parse_settings(self.settings_model, self.settings)
        if parsed is None:
            raise InputError("; ".join(map(str, problems)))
        self.live = parsed
        self._sampler: Sampler | None = None
        self._program: Program | None = None
        self._stall: StallWatch | None = None

    # --- what subclasses provide ---------------------------------------------------------------
    @classmethod
    @abstractmethod
    def check_program(cls, task: Task, settings: Any) -> list[Problem]:
        """Everything about the pipeline itself that can be checked before any spend."""

    @abstractmethod
    def make_program(self) -> Program: ...

    @classmethod
    def held_reductions(cls, task: Task, config: Config) -> list[Config]:
        """Fewer samples on any stage: an earlier stage's reduction that leaves its aggregate
        unchanged feeds later stages the same prompts, all cache hits; one that changes it asks
        for prompts never drawn, and the cache-only run fails (nothing is derived from it)."""
        return [c for stage in task.stages for c in fewer_samples(task, config, stage.name)]

    async def run_held(
        self,
        configs: Sequence[Config],
        split: Split,
        items: Sequence[int] | None,
        *,
        sources: Sequence[Config],
    ) -> list[TrialResult]:
        """The sources first, from the cache, to learn which prompts they sent; then `configs`
        on those prompts' samples alone. The cache is shared by every search on the machine: a
        prompt another search drew must not make a configuration free here, or the same search
        would score other configurations for free, and propose others, on a warm cache."""
        if not self.live.cache_only:
            raise RuntimeError("run_held answers from the cache: make the executor `held_only`")
        await self.run(sources, split, items)
        self.sampler.only_from(self.sampler.sent)
        return await self.run(configs, split, items)

    # --- checks ----------------------------------------------------------------------------------
    @classmethod
    def check_task(cls, task: Task) -> list[Problem]:
        parsed, problems = parse_settings(cls.settings_model, task.environment.settings)
        for stage in task.stages:
            problems.extend(split_settings(stage)[2])
            for m in stage.models:
                if m.kind == "llm" and not m.endpoint:
                    problems.append(
                        Problem(
                            field=f"stages[{stage.name}].models[{m.name}]",
                            message="no endpoint: give `endpoint:` or list it in a deployment file",
                        )
                    )
        if task.data.path is None:
            problems.append(Problem(field="data.path", message="a pipeline needs a data file"))
        if parsed is None or problems:
            return problems
        return cls.check_program(task, parsed)

    # --- resources -------------------------------------------------------------------------------
    @property
    def sampler(self) -> Sampler:
        """Opened on first use: making an executor holds no file or connection."""
        if self._sampler is None:
            self._sampler = Sampler(self.task, self.live)
        return self._sampler

    @property
    def program(self) -> Program:
        if self._program is None:
            self._program = self.make_program()
        return self._program

    def call_stats(self) -> CallStats:
        """Requests to stage endpoints since this executor was made (retries included)."""
        stats = [c.stats for c in self._sampler.endpoints.all_clients] if self._sampler else []
        return CallStats(
            requests=sum(s.requests for s in stats),
            retries=sum(s.retries for s in stats),
            failures=sum(s.failures for s in stats),
            max_in_flight=max((s.max_in_flight for s in stats), default=0),
            busy_s=sum(s.busy_s for s in stats),
        )

    async def aclose(self) -> None:
        if self._sampler is not None:
            await self._sampler.aclose()

    # --- running ---------------------------------------------------------------------------------
    def _choices(self, configs: Sequence[Config]) -> list[ModelChoice]:
        seen: dict[str, ModelChoice] = {}
        for config in configs:
            for stage in self.task.stages:
                used = [stage.model(config[stage.name].model)]
                fuser = stage.aggregator_settings.get("model")
                if stage.aggregator == "fuse" and fuser:
                    used.append(stage.model(fuser))
                for choice in used:
                    seen.setdefault(choice.name, choice)
        return list(seen.values())

    async def _evaluate_batch(
        self, configs: Sequence[Config], split: Split, items: tuple[int, ...] | None
    ) -> list[TrialResult]:
        """Every endpoint the batch needs is checked before any configuration runs."""
        loop = asyncio.get_running_loop()
        loop.set_default_executor(_DaemonThreads(max_workers=1))
        await self.sampler.check_endpoints(self._choices(configs))
        async with StallWatch(self.live.item_timeout_s) as self._stall:
            return await super()._evaluate_batch(configs, split, items)

    def split_size(self, split: Split) -> int:
        """Items in a split (`HasItems`: racing runs the pipeline on a subset of them)."""
        return len(self.program.items(split))

    async def _evaluate(
        self, config: Config, split: Split, subset: tuple[int, ...] | None
    ) -> TrialResult:
        start = time.perf_counter()
        program = self.program
        items = program.items(split)
        if subset is not None:
            items = [items[i] for i in subset]
        if not items:
            raise InputError(f"the {split} split is empty")
        run = TrialRun(self.task, config, self.sampler)
        progress = ItemProgress(len(items), f"{split} {config.short()}", quiet=self.live.cache_only)
        # each item in a fresh context: a user's graph must not inherit the caller's LangGraph
        # run (its checkpointer, callbacks), as it would when the search itself runs in a graph
        loop = asyncio.get_running_loop()
        jobs = [
            loop.create_task(self._item(program, run, item), context=contextvars.Context())
            for item in items
        ]

        def advance(job: asyncio.Task[Any]) -> None:
            if not job.cancelled():
                progress.advance()

        for job in jobs:
            job.add_done_callback(advance)
        names = [str(item.get("id", i)) for i, item in enumerate(items)]
        try:
            with progress:
                outcomes = await asyncio.gather(*jobs)
        except BaseException:
            # the trial has failed for good: stop spending on its other items
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            raise
        if run.fatal is not None:  # caught by user code, but the trial cannot stand
            raise run.fatal
        result = self._result(config, split, run, names, outcomes, time.perf_counter() - start)
        if subset is not None and result.ok:  # a failed item scores 0, as in the mean
            main = self.task.main_metric
            result.item_scores = [0.0 if o.scores is None else o.scores[main] for o in outcomes]
        if self.live.record_items:
            result.details["records"] = [
                {
                    "id": name,
                    "prediction": _plain(o.prediction),
                    "gold": _plain(gold_of(item, self.live, None)),
                    "scores": o.scores,
                    "error": o.error,
                    "outputs": o.outputs,
                }
                for name, item, o in zip(names, items, outcomes, strict=True)
            ]
        return result

    async def predict(self, program: Program, run: TrialRun, item: dict[str, Any]) -> Any:
        """One item's prediction in `run` (made the current run here), stopped after the item's
        own time (TimeoutError); what is not the item's fault raises the run's fatal error, and a
        request of its own that failed for good raises that, even if the item's code caught it."""
        run.enter()
        clock = ItemClock()
        stalled = self._stall.stalled_s if self._stall is not None else float
        prediction = await _within_own_time(
            program.predict(item, run.stages), self.live.item_timeout_s, clock, stalled
        )
        if run.fatal is not None:
            raise run.fatal
        if clock.failure is not None:
            raise clock.failure
        return prediction

    async def _item(self, program: Program, run: TrialRun, item: dict[str, Any]) -> ItemOutcome:
        """The item's scores, or why it failed (its own fault only; else the trial fails)."""
        out = ItemOutcome()
        ITEM_OUTPUTS.set(out.outputs if self.live.record_items else None)
        timeout = self.live.item_timeout_s
        try:
            out.prediction = await self.predict(program, run, item)
            out.scores = await program.score(out.prediction, item)
        except ResumableStop:
            raise
        except Exception as e:
            if run.fatal is not None:
                raise run.fatal from None
            if isinstance(e, TimeoutError):
                out.error, out.timed_out = f"timed out after {timeout:g} s", True
            elif isinstance(e, LoopBlocked) and self._stall is not None:
                out.error, out.timed_out = f"LoopBlocked: {self._stall.cause}", True
            elif isinstance(e, TrialError):  # a request of its own failed: not the code's fault
                out.error = f"{type(e).__name__}: {e}"
            else:
                out.error, out.raised_at = f"{type(e).__name__}: {e}", raised_at(e)
        return out

    def _result(
        self,
        config: Config,
        split: Split,
        run: TrialRun,
        names: Sequence[str],
        outcomes: Sequence[ItemOutcome],
        seconds: float,
    ) -> TrialResult:
        metric_names = list(self.task.metrics)
        failed = [(names[i], o) for i, o in enumerate(outcomes) if o.failed]
        zero = dict.fromkeys(metric_names, 0.0)
        scores = [o.scores or zero for o in outcomes]
        metrics = {k: sum(s[k] for s in scores) / len(scores) for k in metric_names}
        stages = self.stage_reports(config, run.tallies)
        measured = [r.measured_cost for r in stages.values() if r.measured_cost is not None]
        details: dict[str, Any] = {
            "items": len(outcomes),
            "samples": sum(t.samples for t in run.tallies.values()),
            "cached_samples": sum(t.cached_samples for t in run.tallies.values()),
        }
        error = None
        if failed:
            first = f"item {failed[0][0]}: {failed[0][1].error}"
            bugs = {o.raised_at for _, o in failed}
            if len(failed) == len(outcomes) and len(bugs) == 1 and None not in bugs:
                raise UserCodeError(
                    f"every item ({len(outcomes)}) of {config.short()} on the {split} split failed "
                    f"with one error of the task's own code (pipeline or metric), {bugs.pop()}; "
                    f"{first}. No configuration can score past it: fix the code (`agenttts task "
                    "validate --dry-run TASK` runs one item)"
                )
            timed_out = sum(1 for _, o in failed if o.timed_out)
            details.update(
                failed_items=len(failed),
                first_item_error=first,
                failed_item_ids=[i for i, _ in failed],
            )
            if timed_out:
                details["timed_out_items"] = timed_out
            if len(failed) > self.live.max_failed_share * len(outcomes):
                error = (
                    f"{len(failed)} of {len(outcomes)} items failed "
                    f"(more than {self.live.max_failed_share:.0%}); first: {first}"
                )
        return TrialResult(
            config=config,
            split=split,
            metrics={} if error else metrics,
            nominal_cost=config_cost(self.task, config),
            measured_cost=sum(measured) if len(measured) == len(stages) else None,
            stages=stages,
            prompt_tokens=sum(r.prompt_tokens for r in stages.values()),
            completion_tokens=sum(r.completion_tokens for r in stages.values()),
            calls=sum(r.calls for r in stages.values()),
            wall_time_s=seconds,
            error=error,
            source="cache" if all(t.calls == 0 for t in run.tallies.values()) else "live",
            details=details,
        )

    def stage_reports(
        self, config: Config, tallies: dict[str, TokenUsage]
    ) -> dict[str, StageReport]:
        """Each stage's nominal and measured cost, tokens, requests and cached samples."""
        out: dict[str, StageReport] = {}
        for stage in self.task.stages:
            sc = config[stage.name]
            choice = stage.model(sc.model)
            t = tallies.get(stage.name, TokenUsage())
            if choice.kind != "llm":
                measured = measured_stage_budget(TokenUsage(), 0.0, 1, choice.fixed_cost)
            else:
                measured = measured_stage_budget(t, choice.params or 0.0, sc.samples)
            fuse = tallies.get(f"{stage.name}/fuse")
            if fuse is not None and fuse.queries and measured is not None:
                fuser = stage.model(stage.aggregator_settings.get("model", sc.model))
                measured += measured_stage_budget(fuse, fuser.params or 0.0, 1) or 0.0
            parts = [t, fuse] if fuse is not None else [t]
            out[stage.name] = StageReport(
                nominal_cost=stage.cost(sc.model, sc.samples),
                measured_cost=measured,
                prompt_tokens=sum(x.prompt_tokens for x in parts),
                completion_tokens=sum(x.completion_tokens for x in parts),
                calls=sum(x.calls for x in parts),
                cached_samples=sum(x.cached_samples for x in parts),
            )
        return out
