"""One OpenAI-compatible endpoint: a concurrency limit, bounded retries, usage from the responses.

The OpenAI client's own retries are switched off (`max_retries=0`) so that this module alone
decides: timeouts, dropped connections, 429 and 5xx are retried with exponential backoff up to
`max_attempts` in all; any other 4xx (bad request, unknown model, auth) fails at once, since
asking again cannot help. Every HTTP request sent is counted, retried ones included.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=4, ge=1, description="requests in all, the first included")
    backoff_s: float = Field(default=0.5, ge=0, description="wait before the first retry")
    max_backoff_s: float = Field(default=8.0, ge=0)
    timeout_s: float = Field(default=120.0, gt=0, description="per request")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter; a server's Retry-After is honoured up to the cap."""
        base = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        if retry_after is not None:
            base = max(base, min(retry_after, self.max_backoff_s))
        return base * (0.8 + 0.4 * random.random())


class EndpointError(RuntimeError):
    """A request that failed for good: not retryable, or still failing after the last attempt."""

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


@dataclass
class Completion:
    texts: list[str]
    finish_reasons: list[str | None]
    prompt_tokens: int
    completion_tokens: int
    attempts: int = 1

    def per_sample_tokens(self) -> list[int]:
        """Usage reports one completion total for n choices: split it evenly, remainder first, so
        the per-sample numbers add up to exactly what the server reported."""
        n = max(1, len(self.texts))
        q, r = divmod(self.completion_tokens, n)
        return [q + (1 if i < r else 0) for i in range(n)]


@dataclass
class EndpointStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    busy_s: float = 0.0  # summed request durations: busy_s / wall time = achieved concurrency
    by_model: dict[str, int] = field(default_factory=dict)


def retryable(e: BaseException) -> tuple[bool, float | None]:
    """Whether asking again may help, and the server's Retry-After if it gave one."""
    if isinstance(e, openai.APITimeoutError | openai.APIConnectionError | httpx.TransportError):
        return True, None
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        if status == 429 or status >= 500:
            after = e.response.headers.get("retry-after") if e.response is not None else None
            try:
                return True, float(after) if after else None
            except ValueError:
                return True, None
    return False, None


def describe(e: BaseException) -> str:
    if isinstance(e, openai.APIStatusError):
        return f"HTTP {e.status_code}"
    if isinstance(e, openai.APITimeoutError):
        return "timeout"
    if isinstance(e, openai.APIConnectionError):
        return "connection error"
    return type(e).__name__


class EndpointClient:
    """Chat completions against one base URL, at most `max_concurrency` requests at a time."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "EMPTY",
        max_concurrency: int = 8,
        supports_n: bool = True,
        retry: RetryPolicy | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.supports_n = supports_n
        self.retry = retry or RetryPolicy()
        self.stats = EndpointStats()
        self._sem = asyncio.Semaphore(max_concurrency)
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key,
            max_retries=0,
            timeout=self.retry.timeout_s,
        )

    async def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        n: int = 1,
        params: Mapping[str, Any] | None = None,
    ) -> Completion:
        params = dict(params or {})
        last: BaseException | None = None
        for attempt in range(self.retry.max_attempts):
            if attempt:
                self.stats.retries += 1
            try:
                async with self._sem:
                    self.stats.requests += 1
                    self.stats.by_model[model] = self.stats.by_model.get(model, 0) + 1
                    self.stats.in_flight += 1
                    self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
                    sent = time.perf_counter()
                    try:
                        resp = await self._client.chat.completions.create(
                            model=model, messages=list(messages), n=n, **params
                        )
                    finally:
                        self.stats.in_flight -= 1
                        self.stats.busy_s += time.perf_counter() - sent
                done = self._completion(resp, n)
                done.attempts = attempt + 1
                return done
            except Exception as e:
                ok, after = retryable(e)
                last = e
                if not ok or attempt + 1 >= self.retry.max_attempts:
                    break
                await asyncio.sleep(self.retry.delay(attempt, after))
        self.stats.failures += 1
        assert last is not None
        tries = attempt + 1
        raise EndpointError(
            f"{self.base_url} model {model!r}: {describe(last)} after {tries} attempt(s): "
            f"{_brief(last)}",
            attempts=tries,
        ) from last

    def _completion(self, resp: Any, n: int) -> Completion:
        choices = sorted(resp.choices or [], key=lambda c: c.index)
        if len(choices) < n:
            raise EndpointError(
                f"{self.base_url}: asked for n={n} samples, got {len(choices)} "
                "(set supports_n: false for this endpoint in the deployment file)"
            )
        if resp.usage is None:
            raise EndpointError(f"{self.base_url}: the response carries no usage")
        return Completion(
            texts=[(c.message.content or "") for c in choices],
            finish_reasons=[c.finish_reason for c in choices],
            prompt_tokens=int(resp.usage.prompt_tokens),
            completion_tokens=int(resp.usage.completion_tokens),
        )

    async def served_models(self, timeout: float = 10.0) -> list[str]:
        """Model ids the server lists; raises the client's error if it cannot be reached."""
        page = await self._client.with_options(timeout=timeout, max_retries=1).models.list()
        return [m.id for m in page.data]

    async def aclose(self) -> None:
        await self._client.close()


def _brief(e: BaseException) -> str:
    if isinstance(e, openai.APIStatusError):
        try:
            body = e.response.text
        except Exception:
            body = ""
        return (body or str(e))[:200]
    return str(e)[:200]
