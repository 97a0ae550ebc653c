"""Drawing samples for a live trial: the sample cache first, then the stage's endpoint.

The one implementation behind every live pipeline (a user's Python function, a LangGraph graph
through the stage chat models, a declared chain): sample i of a prompt is cache index i, so S
samples are indexes 0..S-1, a trial with more samples asks only for the missing ones (with `n`
where the endpoint honours it, in chunks of `max_n`), and a re-run makes no call. `cache_only`
replays a finished search with zero calls and names the first missing sample; `only_from` narrows
such a replay to the prompts some other trials sent (`sent`), as free evaluations need.

Endpoints are shared by every trial of an executor (`client.Endpoints`: one client per served
model over its replicas, with the deployment's concurrency limit and the retry policy) and checked
once before any compute: a server that does not answer, or does not serve the model, stops the run
with one clear error (a `ResumableStop`: the same command continues the search once the server is
back). After that a request that fails for good fails only its trial, unless the model has answered
nothing yet (the circuit breaker: a `ResumableStop` again); every sample drawn stays in the cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.budget import TokenUsage
from agenttts.environment.deployment import Deployment
from agenttts.environment.live.cache import Sample, SampleCache, request_key
from agenttts.environment.live.client import Completion, EndpointClient, Endpoints, RetryPolicy
from agenttts.environment.task import ModelChoice, Task
from agenttts.errors import TrialError

Messages = list[dict[str, Any]]


class SamplerSettings(BaseModel):
    """How a live executor reaches its endpoints and keeps its samples (`environment.settings`)."""

    model_config = ConfigDict(extra="forbid")

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


@dataclass(frozen=True)
class Drawn:
    """The samples of one prompt and what they cost (the prompt is counted once)."""

    samples: list[Sample]
    prompt_tokens: int
    calls: int

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.samples)


class Sampler:
    """Endpoints and the sample cache of one executor, shared by all its trials."""

    def __init__(self, task: Task, settings: SamplerSettings, deployment: Deployment | None = None):
        """`deployment`: the entries of the task's models (an exported configuration carries its
        own); by default the task's deployment file."""
        self.task = task
        self.settings = settings
        if deployment is None and task.deployment:
            deployment = Deployment.load(task.resolve(task.deployment))
        self.endpoints = Endpoints(
            deployment, settings.retry, start_embedded=settings.start_embedded
        )
        self._cache_path = Path(settings.cache).expanduser()
        self._cache: SampleCache | None = None
        #: every prompt drawn so far (its cache key) with the most samples drawn of it
        self.sent: dict[str, int] = {}
        self._only: Mapping[str, int] | None = None

    @property
    def cache(self) -> SampleCache:
        """Opened on first use."""
        if self._cache is None:
            self._cache = SampleCache(self._cache_path)
        return self._cache

    # --- endpoints -------------------------------------------------------------------------------
    def served_name(self, choice: ModelChoice) -> str:
        return self.endpoints.served_name(choice.name)

    def client(self, choice: ModelChoice) -> EndpointClient:
        return self.endpoints.client(choice.name, choice.endpoint)

    async def check_endpoints(self, choices: Iterable[ModelChoice]) -> None:
        """Each model's endpoint once: reachable, serving the model, and which model answers
        (the cache key). One clear error (a `ResumableStop`) otherwise; none in a replay."""
        if self.settings.cache_only:
            return
        for choice in choices:
            if choice.kind == "llm":
                await self.client(choice).identify()

    # --- drawing ---------------------------------------------------------------------------------
    def only_from(self, sent: Mapping[str, int]) -> None:
        """From now on a cache-only draw may use these prompts' samples alone (`sent` of a
        sampler that ran other trials): what the shared cache holds beyond them, another
        search's samples, is missing."""
        self._only = dict(sent)

    async def draw(
        self,
        stage: str,
        choice: ModelChoice,
        messages: Messages,
        count: int,
        params: Mapping[str, Any],
        tally: TokenUsage,
    ) -> Drawn:
        """Samples 0..count-1 of a prompt: from the cache, the missing ones from the endpoint."""
        model = self.served_name(choice)
        replay = self.settings.cache_only
        identity = await self.endpoints.identity(
            choice.name, choice.endpoint, cache=self.cache if replay else None
        )
        key = request_key(identity, messages, params)
        calls = drawn = 0
        if replay:
            missing = self.cache.missing(key, count)
            if self._only is not None and not missing and self._only.get(key, 0) < count:
                missing = [self._only.get(key, 0)]
            if missing:
                question = str(messages[-1]["content"]).replace("\n", " ")[:80]
                raise TrialError(
                    f"cache-only: sample {missing[0]} (of {count}) of model {model!r} at stage "
                    f"{stage!r} is not {'held' if self._only is not None else 'cached'} "
                    f"(prompt {key[:12]}: {question!r}...)"
                )
        else:
            # each missing sample drawn once, across this process's trials and other processes
            # sharing the cache; (not `tally.calls += await ...`: that reads the counter before
            # the await and loses the other coroutines' increments)
            calls, drawn = await self.cache.fill(
                key,
                count,
                lambda indexes: self._fill(choice, model, key, messages, dict(params), indexes),
            )
            tally.calls += calls
        have = self.cache.samples(key, count)
        if len(have) < count:
            raise TrialError(
                f"model {model!r}: only {len(have)} of {count} samples could be stored"
            )
        prompt_tokens = self.cache.prompt_tokens(key) or 0
        self.sent[key] = max(self.sent.get(key, 0), count)
        tally.queries += 1
        tally.prompt_tokens += prompt_tokens
        tally.samples += count
        tally.completion_tokens += sum(s.completion_tokens for s in have)
        tally.cached_samples += count - drawn
        return Drawn(have, prompt_tokens, calls)

    async def _fill(
        self,
        choice: ModelChoice,
        model: str,
        key: str,
        messages: Messages,
        params: dict[str, Any],
        missing: Sequence[int],
    ) -> int:
        """Request the missing indexes; each answer is stored as soon as it arrives."""
        client = self.client(choice)
        identity = await client.identify()

        async def one(indexes: list[int], extra: dict[str, Any]) -> int:
            done: Completion = await client.chat(
                model, messages, n=len(indexes), params={**params, **extra}
            )
            tokens = done.per_sample_tokens()
            self.cache.put(
                key,
                model=model,
                identity=identity,
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
            step = self.settings.max_n
            jobs = [one(list(missing[j : j + step]), {}) for j in range(0, len(missing), step)]
        else:
            jobs = [one([i], {}) for i in missing]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        return sum(r for r in results if isinstance(r, int))

    async def aclose(self) -> None:
        await self.endpoints.aclose()
        if self._cache is not None:
            self._cache.close()
            self._cache = None
