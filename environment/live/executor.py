"""`kind: live`: run a multi-stage pipeline on OpenAI-compatible endpoints, S samples per stage.

Before any compute, every endpoint a batch needs is asked for its model list once: a server that
does not answer, or does not serve the model, stops the run with one clear error
(`EndpointUnreachable`, which the search runner turns into a resumable stop). After that, a request
that fails for good (retries spent) fails only its trial; the search goes on and every sample
already drawn stays in the cache.

Samples come from the durable cache first; only missing indexes are requested (with `n` where the
endpoint honours it, in chunks of `max_n`). `cache_only: true` replays a finished search with zero
calls and names the first missing sample if there is one.

Cost per stage: nominal from the task's lengths (the paper's unit); measured from the tokens the
endpoint reported (prompt once per query, completions of the samples used), cached or not. An LLM
fuser's calls are measured and added to its stage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.budget import TokenUsage, measured_stage_budget
from agenttts.environment.deployment import Deployment, Endpoint
from agenttts.environment.executor import Executor, StageReport, TrialResult, parse_settings
from agenttts.environment.live.cache import CacheMiss, Sample, SampleCache, request_key
from agenttts.environment.live.client import (
    Completion,
    EndpointClient,
    RetryPolicy,
)
from agenttts.environment.live.pipelines import PIPELINES, Messages, StageSettings
from agenttts.environment.task import Config, ModelChoice, Problem, Split, Stage, Task
from agenttts.llm import AgentUnreachable


class LiveSettings(BaseModel):
    """`environment.settings` of a live task (all optional)."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(default="retrieval_qa", description="what the stages do, by name")
    cache: str = Field(
        default=".agenttts/cache/samples.sqlite", description="sample cache (relative: to cwd)"
    )
    cache_only: bool = Field(default=False, description="replay from the cache, zero calls")
    start_embedded: bool = Field(
        default=True,
        description="start the embedded server when `embedded` is needed and none runs",
    )
    max_n: int = Field(default=16, ge=1, description="most samples asked in one request")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class EndpointUnreachable(AgentUnreachable):
    """A stage endpoint that cannot serve at all: stop before spending anything."""


@dataclass
class Tally:
    """Measured tokens of one stage (or its fuser) in one trial."""

    queries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    samples: int = 0
    calls: int = 0
    cached_samples: int = 0

    def usage(self) -> TokenUsage:
        return TokenUsage(
            self.queries, self.prompt_tokens, self.completion_tokens, self.samples, self.calls
        )


class LiveExecutor(Executor):
    kind = "live"

    def __init__(self, task: Task, **overrides: Any):
        super().__init__(task, **overrides)
        parsed, problems = parse_settings(LiveSettings, self.settings)
        if parsed is None:
            raise ValueError("; ".join(map(str, problems)))
        self.live = parsed
        self.pipeline = PIPELINES[parsed.pipeline](task)
        self.deployment = (
            Deployment.load(task.resolve(task.deployment)) if task.deployment else None
        )
        self.cache = SampleCache(Path(parsed.cache).expanduser())
        self._clients: dict[str, EndpointClient] = {}
        self._checked: set[tuple[str, str]] = set()

    # --- checks ----------------------------------------------------------------------------------
    @classmethod
    def check_task(cls, task: Task) -> list[Problem]:
        parsed, problems = parse_settings(LiveSettings, task.environment.settings)
        if parsed is None:
            return problems
        pipeline = PIPELINES.get(parsed.pipeline)
        if pipeline is None:
            return [
                Problem(
                    field="environment.settings.pipeline",
                    message=f"unknown pipeline {parsed.pipeline!r} (known: {', '.join(PIPELINES)})",
                )
            ]
        problems = pipeline.check(task)
        for s in task.stages:
            for m in s.models:
                if m.kind == "llm" and not m.endpoint:
                    problems.append(
                        Problem(
                            field=f"stages[{s.name}].models[{m.name}]",
                            message="no endpoint: give `endpoint:` or list it in a deployment file",
                        )
                    )
        return problems

    # --- endpoints -------------------------------------------------------------------------------
    def _entry(self, choice: ModelChoice) -> Endpoint | None:
        return self.deployment.models.get(choice.name) if self.deployment else None

    def served_name(self, choice: ModelChoice) -> str:
        entry = self._entry(choice)
        return (entry.served_name if entry and entry.served_name else None) or choice.name

    def client(self, choice: ModelChoice) -> EndpointClient:
        base = choice.endpoint or ""
        if base == "embedded":
            from agenttts.environment.embedded import EmbeddedServerError, embedded_base_url

            try:
                base = embedded_base_url(start=self.live.start_embedded)
            except EmbeddedServerError as e:
                raise EndpointUnreachable(str(e)) from None
        base = base.rstrip("/")
        if base not in self._clients:
            entry = self._entry(choice)
            self._clients[base] = EndpointClient(
                base,
                api_key=entry.api_key() if entry else "EMPTY",
                max_concurrency=entry.max_concurrency if entry else 8,
                supports_n=entry.supports_n if entry else True,
                retry=self.live.retry,
            )
        return self._clients[base]

    def _llm_choices(self, configs: Sequence[Config]) -> list[ModelChoice]:
        seen: dict[str, ModelChoice] = {}
        for config in configs:
            if self.task.config_problems(config):
                continue
            for stage in self.task.stages:
                used = [stage.model(config[stage.name].model)]
                fuser = stage.aggregator_settings.get("model")
                if stage.aggregator == "fuse" and fuser:
                    used.append(stage.model(fuser))
                for choice in used:
                    if choice.kind == "llm":
                        seen.setdefault(choice.name, choice)
        return list(seen.values())

    async def check_endpoints(self, configs: Sequence[Config]) -> None:
        """Each endpoint once: reachable, and serving the model. One clear error otherwise."""
        for choice in self._llm_choices(configs):
            client = self.client(choice)
            name = self.served_name(choice)
            if (client.base_url, name) in self._checked:
                continue
            try:
                served = await client.served_models()
            except Exception as e:
                raise EndpointUnreachable(
                    f"the endpoint of model {choice.name!r} ({client.base_url}) is unreachable "
                    f"({type(e).__name__}: {str(e)[:160]}); nothing was run"
                ) from None
            if name not in served:
                raise EndpointUnreachable(
                    f"{client.base_url} does not serve model {name!r} (it serves: "
                    f"{', '.join(served) or 'nothing'}); nothing was run"
                )
            self._checked.add((client.base_url, name))

    @property
    def calls(self) -> int:
        """HTTP requests this executor sent to stage endpoints (retries included)."""
        return sum(c.stats.requests for c in self._clients.values())

    # --- running ---------------------------------------------------------------------------------
    async def run(self, configs: Sequence[Config], split: Split) -> list[TrialResult]:
        if not self.live.cache_only:
            await self.check_endpoints(configs)
        return await super().run(configs, split)

    async def _run_one(self, config: Config, split: Split) -> TrialResult:
        problems = self.task.config_problems(config)
        if problems:
            raise ValueError("; ".join(problems))
        start = time.perf_counter()
        tallies: dict[str, Tally] = {}

        async def draw(
            stage: Stage,
            choice: ModelChoice,
            messages: Messages,
            count: int,
            settings: StageSettings,
            tally: str,
        ) -> list[Sample]:
            return await self.draw(
                stage, choice, messages, count, settings, tallies.setdefault(tally, Tally())
            )

        items = self.pipeline.items(split)
        if not items:
            raise ValueError(f"the {split} split is empty")
        jobs = [asyncio.ensure_future(self.pipeline.run_item(i, config.root, draw)) for i in items]
        try:
            scores = await asyncio.gather(*jobs)
        except BaseException:
            # one item failed for good: the trial has failed, stop spending on its other items
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            raise
        metrics = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
        stages = self._stage_reports(config, tallies)
        measured = [r.measured_cost for r in stages.values() if r.measured_cost is not None]
        return TrialResult(
            config=config,
            split=split,
            metrics=metrics,
            nominal_cost=self.task.cost(config),
            measured_cost=sum(measured) if len(measured) == len(stages) else None,
            stages=stages,
            prompt_tokens=sum(r.prompt_tokens for r in stages.values()),
            completion_tokens=sum(r.completion_tokens for r in stages.values()),
            calls=sum(r.calls for r in stages.values()),
            wall_time_s=time.perf_counter() - start,
            source="cache" if all(t.calls == 0 for t in tallies.values()) else "live",
            details={
                "items": len(items),
                "cached_samples": sum(t.cached_samples for t in tallies.values()),
            },
        )

    def _stage_reports(self, config: Config, tallies: dict[str, Tally]) -> dict[str, StageReport]:
        out: dict[str, StageReport] = {}
        for stage in self.task.stages:
            sc = config[stage.name]
            choice = stage.model(sc.model)
            t = tallies.get(stage.name, Tally())
            if choice.kind != "llm":
                measured = measured_stage_budget(TokenUsage(), 0.0, 1, choice.fixed_cost)
            else:
                measured = measured_stage_budget(t.usage(), choice.params or 0.0, sc.samples)
            fuse = tallies.get("fuse") if stage.aggregator == "fuse" else None
            if fuse is not None and fuse.queries and measured is not None:
                fuser = stage.model(stage.aggregator_settings.get("model", sc.model))
                measured += measured_stage_budget(fuse.usage(), fuser.params or 0.0, 1) or 0.0
            extra = [t, fuse] if fuse is not None else [t]
            out[stage.name] = StageReport(
                nominal_cost=stage.cost(sc.model, sc.samples),
                measured_cost=measured,
                prompt_tokens=sum(x.prompt_tokens for x in extra),
                completion_tokens=sum(x.completion_tokens for x in extra),
                calls=sum(x.calls for x in extra),
                cached_samples=sum(x.cached_samples for x in extra),
            )
        return out

    async def draw(
        self,
        stage: Stage,
        choice: ModelChoice,
        messages: Messages,
        count: int,
        settings: StageSettings,
        tally: Tally,
    ) -> list[Sample]:
        """Samples 0..count-1 of a prompt: from the cache, the missing ones from the endpoint."""
        model = self.served_name(choice)
        params = settings.sampling(stage)
        key = request_key(model, messages, params)
        async with self.cache.lock(key):
            missing = self.cache.missing(key, count)
            if missing and self.live.cache_only:
                question = messages[-1]["content"].replace("\n", " ")[:80]
                raise CacheMiss(
                    f"cache-only: sample {missing[0]} (of {count}) of model {model!r} at stage "
                    f"{stage.name!r} is not cached (prompt {key[:12]}: {question!r}...)"
                )
            if missing:
                # (not `tally.calls += await ...`: that reads the counter before the await and
                # loses the other coroutines' increments)
                sent = await self._fill(choice, model, key, messages, params, missing)
                tally.calls += sent
            have = self.cache.samples(key, count)
        if len(have) < count:
            raise CacheMiss(f"model {model!r}: only {len(have)} of {count} samples could be stored")
        tally.queries += 1
        tally.prompt_tokens += self.cache.prompt_tokens(key) or 0
        tally.samples += count
        tally.completion_tokens += sum(s.completion_tokens for s in have)
        tally.cached_samples += count - len(missing)
        return have

    async def _fill(
        self,
        choice: ModelChoice,
        model: str,
        key: str,
        messages: Messages,
        params: dict[str, Any],
        missing: list[int],
    ) -> int:
        """Request the missing indexes; each answer is stored as soon as it arrives."""
        client = self.client(choice)

        async def one(indexes: list[int], extra: dict[str, Any]) -> int:
            done: Completion = await client.chat(
                model, messages, n=len(indexes), params={**params, **extra}
            )
            tokens = done.per_sample_tokens()
            self.cache.put(
                key,
                model=model,
                messages=messages,
                params=params,
                prompt_tokens=done.prompt_tokens,
                samples=[
                    Sample(i, done.texts[j], tokens[j], done.finish_reasons[j])
                    for j, i in enumerate(indexes)
                ],
            )
            return done.attempts

        if "seed" in params:  # sample i is reproducible on its own: seed + i, one request each
            jobs = [one([i], {"seed": int(params["seed"]) + i}) for i in missing]
        elif client.supports_n:
            step = self.live.max_n
            jobs = [one(missing[j : j + step], {}) for j in range(0, len(missing), step)]
        else:
            jobs = [one([i], {}) for i in missing]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        return sum(r for r in results if isinstance(r, int))

    async def aclose(self) -> None:
        for c in self._clients.values():
            await c.aclose()
        self._clients.clear()
        self.cache.close()
