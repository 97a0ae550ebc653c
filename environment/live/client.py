"""OpenAI-compatible endpoints: replicas of one served model, bounded retries, a circuit breaker.

- A `Replica` is one server (a base URL): its OpenAI client, its concurrency limit, its stats. It
  is shared by every model served at that URL, so its load is the server's.
- An `EndpointClient` serves one model from one or more replicas. A request goes to the replica
  with the fewest requests on it (those waiting for its concurrency limit included) and is
  retried there on timeouts, dropped connections, 429, 5xx and unreadable answers (tenacity;
  exponential backoff with jitter, a server's Retry-After honoured). Once that replica's attempts
  are spent it is taken out for `replica_backoff_s` while the others carry on, and the request
  moves to the next one: it fails only when every replica has failed it. Any other 4xx fails at
  once, since asking again cannot help. The OpenAI client's own retries are off
  (`max_retries=0`), so this module alone decides; every HTTP request sent is counted.
- Circuit breaker: a request failing on every replica says the endpoint is down (dead, or
  answering 5xx or garbage to everything) unless the endpoint answers other requests: a replica
  answered one since this request began failing there and still lists its models, or, when none
  did, a probe (a one-token request of another prompt) is answered. Down raises `ResumableStop`;
  the model's other requests stop at their next attempt instead of spending on, and the search
  stops with exit 3 (the batch is not recorded: a resume runs it again, every sample already
  drawn coming from the cache). A request that keeps failing while the endpoint answers others
  (a prompt the server chokes on, a refused request) is `RequestFailed`: it fails its item, and
  its trial only as the items' failures add up, so one poison prompt cannot stop every resume.
- Each retry wave (requests failing alike on one replica at the same attempt, until it answers
  or is taken out) is one WARNING line on the `agenttts.live` logger: model, URL, cause, attempt.
- `Endpoints` is an executor's registry: deployment entry -> served name, replica URLs, limits.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import httpx
import openai
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from agenttts.environment.deployment import NO_KEY, Deployment, Endpoint
from agenttts.environment.live.cache import SampleCache, model_identity, names_weights
from agenttts.errors import (
    AgentTTSError,
    EmbeddedServerError,
    InputError,
    ResumableStop,
    TrialError,
)
from agenttts.urls import masked

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger("agenttts.live")


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(
        default=4, ge=1, description="requests in all on one replica, the first included"
    )
    backoff_s: float = Field(default=0.5, ge=0, description="wait before the first retry")
    max_backoff_s: float = Field(default=8.0, ge=0)
    timeout_s: float = Field(default=120.0, gt=0, description="per request")
    replica_backoff_s: float = Field(
        default=30.0, ge=0, description="how long a replica that failed a request is taken out"
    )

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter; a server's Retry-After is honoured up to the cap."""
        base = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        if retry_after is not None:
            base = max(base, min(retry_after, self.max_backoff_s))
        return base * (0.8 + 0.4 * random.random())


@dataclass
class Completion:
    texts: list[str]
    finish_reasons: list[str | None]
    prompt_tokens: int
    completion_tokens: int
    attempts: int = 1  # HTTP requests this completion took, on every replica tried

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
    failures: int = 0  # requests that failed for good (on a replica: its attempts spent)
    taken_out: int = 0  # times a replica was taken out
    in_flight: int = 0
    max_in_flight: int = 0
    busy_s: float = 0.0  # summed request durations: busy_s / wall time = achieved concurrency
    by_model: dict[str, int] = field(default_factory=dict)


class Unreadable(TrialError):
    """An answer that is not a usable completion: not JSON, no usage, fewer choices than asked."""


class RequestFailed(TrialError):
    """One request failed for good while its endpoint answers others (refused with a 4xx, or
    failing on every replica): the request's own fault, so it fails the item that made it."""


#: The probe that tells a dead endpoint from one that chokes on one prompt: another prompt, one
#: token (the least compute a chat completion can cost).
PROBE_MESSAGES = ({"role": "user", "content": "Reply with OK."},)
PROBE_PARAMS = {"max_tokens": 1, "temperature": 0.0}


def retryable(e: BaseException) -> tuple[bool, float | None]:
    """Whether asking again may help, and the server's Retry-After if it gave one."""
    if isinstance(
        e,
        openai.APITimeoutError
        | openai.APIConnectionError
        | openai.APIResponseValidationError
        | httpx.TransportError
        | Unreadable,
    ):
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


_WARNED: set[tuple[str, tuple[str, ...]]] = set()


def warn_name_only(model: str, urls: Sequence[str]) -> None:
    """Once per run and model: its server names no weights, so its samples are kept per server."""
    key = (model, tuple(sorted(urls)))
    if key in _WARNED:
        return
    _WARNED.add(key)
    log.warning(
        "model %r at %s: the server reports only the name, not the weights behind it, so its "
        "cached samples are kept apart from any other server's; if other servers hold the same "
        "weights, declare `revision:` for the model in the deployment file to share them",
        model,
        ", ".join(urls),
    )


def describe(e: BaseException) -> str:
    if isinstance(e, openai.APIStatusError):
        return f"HTTP {e.status_code}"
    if isinstance(e, openai.APITimeoutError):
        return "timeout"
    if isinstance(e, openai.APIConnectionError):
        return "connection error"
    if isinstance(e, Unreadable | openai.APIResponseValidationError):
        return "unreadable answer"
    return type(e).__name__


def _brief(e: BaseException) -> str:
    if isinstance(e, openai.APIStatusError):
        try:
            body = e.response.text
        except Exception:
            body = ""
        return (body or str(e))[:200]
    return str(e)[:200]


class Replica:
    """One server: the OpenAI client, the concurrency limit and the stats of one base URL."""

    def __init__(self, base_url: str, *, api_key: str, max_concurrency: int, timeout_s: float):
        self.base_url = base_url.rstrip("/")
        self.shown = masked(self.base_url)  # in messages, logs and cache keys: no password
        self.max_concurrency = max_concurrency
        self.stats = EndpointStats()
        self.load = 0  # requests routed here and not finished (queued for the limit included)
        self._sem = asyncio.Semaphore(max_concurrency)
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key, max_retries=0, timeout=timeout_s
        )

    async def send(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        n: int,
        params: Mapping[str, Any],
        counted: Sequence[EndpointStats] = (),
    ) -> Completion:
        """One HTTP request, counted here and in `counted`; a bad answer raises `Unreadable`."""
        every = (self.stats, *counted)
        async with self._sem:
            for s in every:
                s.requests += 1
                s.by_model[model] = s.by_model.get(model, 0) + 1
                s.in_flight += 1
                s.max_in_flight = max(s.max_in_flight, s.in_flight)
            sent = time.perf_counter()
            try:
                resp = await self._client.chat.completions.create(
                    model=model,
                    messages=cast("list[ChatCompletionMessageParam]", list(messages)),
                    n=n,
                    **params,
                )
            except ValueError as e:  # a body that claims JSON and is not
                raise Unreadable(f"not JSON: {e}") from e
            finally:
                for s in every:
                    s.in_flight -= 1
                    s.busy_s += time.perf_counter() - sent
        return self._completion(resp, n)

    def _completion(self, resp: Any, n: int) -> Completion:
        choices = getattr(resp, "choices", None)
        if not isinstance(choices, list):
            raise Unreadable(f"not a chat completion: {str(resp)[:120]!r}")
        choices = sorted(choices, key=lambda c: c.index)
        if len(choices) < n:
            raise Unreadable(
                f"asked for n={n} samples, got {len(choices)} "
                "(set supports_n: false for this endpoint in the deployment file)"
            )
        usage = getattr(resp, "usage", None)
        if usage is None:
            raise Unreadable("the response carries no usage")
        return Completion(
            texts=[(c.message.content or "") for c in choices],
            finish_reasons=[c.finish_reason for c in choices],
            prompt_tokens=int(usage.prompt_tokens),
            completion_tokens=int(usage.completion_tokens),
        )

    async def models(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The `/models` entries the server lists (all their fields); raises if unreachable."""
        page = await self._client.with_options(timeout=timeout, max_retries=1).models.list()
        return [m.model_dump() for m in page.data]

    async def aclose(self) -> None:
        await self._client.close()


@dataclass
class _Member:
    """A replica as one model's client sees it: its health for this model and its stats."""

    replica: Replica
    stats: EndpointStats = field(default_factory=EndpointStats)
    down_until: float = 0.0
    out: bool = False
    last_answer: float = -float("inf")  # time.monotonic() of its latest answer for this model
    waves: set[tuple[int, str]] = field(default_factory=set)  # (attempt, cause) logged

    @property
    def url(self) -> str:
        """The replica as messages, logs and the cache key name it (`Replica.shown`)."""
        return self.replica.shown


class _Spent(AgentTTSError):
    """This replica's attempts are spent (or the breaker opened): try the next one."""

    def __init__(self, last: BaseException, attempts: int):
        super().__init__(str(last))
        self.last = last
        self.attempts = attempts


class EndpointClient:
    """Chat completions of one served model over its replicas (see the module docstring)."""

    def __init__(
        self,
        model: str,
        replicas: Sequence[Replica],
        *,
        supports_n: bool = True,
        retry: RetryPolicy | None = None,
        revision: str | None = None,
    ):
        if not replicas:
            raise InputError(f"model {model!r} has no endpoint")
        self.model = model
        self.supports_n = supports_n
        self.retry = retry or RetryPolicy()
        self.revision = revision
        self.stats = EndpointStats()  # this model's requests, all replicas together
        self.answered = 0
        self.tripped: str | None = None  # why the breaker opened
        self._members = [_Member(r) for r in replicas]
        self._identity: str | None = None
        self._identify_lock = asyncio.Lock()
        self._probe_lock = asyncio.Lock()

    @property
    def base_urls(self) -> list[str]:
        return [m.url for m in self._members]

    @property
    def base_url(self) -> str:
        return ", ".join(self.base_urls)

    def replica_stats(self) -> dict[str, EndpointStats]:
        """This model's requests on each replica."""
        return {m.url: m.stats for m in self._members}

    # --- identity --------------------------------------------------------------------------------
    async def identify(self) -> str:
        """Which model answers (the sample cache's key; `cache.model_identity`), checked once:
        every replica asked for its model list. Unreachable replicas are taken out; none
        reachable, one not serving the model, or replicas reporting different models (with no
        `revision` declared) is a `ResumableStop` before anything is spent."""
        async with self._identify_lock:
            if self._identity is None:
                self._identity = await self._identify()
            return self._identity

    async def _identify(self) -> str:
        cards: dict[str, dict[str, Any]] = {}
        unreachable: list[str] = []
        for m in self._members:
            try:
                listed = await m.replica.models()
            except Exception as e:
                unreachable.append(f"{m.url} ({type(e).__name__}: {str(e)[:160]})")
                self._take_out(m, f"unreachable: {type(e).__name__}")
                continue
            card = next((c for c in listed if c.get("id") == self.model), None)
            if card is None:
                served = ", ".join(str(c.get("id")) for c in listed) or "nothing"
                raise ResumableStop(
                    f"{m.url} does not serve model {self.model!r} (it serves: {served}); "
                    "nothing was run. If the task's model is another name for one of these "
                    "(several task models on one server), give its deployment entry "
                    "`served_name:` (see the README, Real vLLM endpoints)",
                    resume_when=f"{m.url} serves model {self.model!r}",
                )
            cards[m.url] = card
        if not cards:
            raise ResumableStop(
                f"the endpoint of model {self.model!r} is unreachable: {'; '.join(unreachable)}; "
                "nothing was run",
                resume_when=f"the endpoint of model {self.model!r} is reachable",
            )
        if self.revision is not None:
            return model_identity(self.model, revision=self.revision)
        seen = {
            url: model_identity(self.model, card, servers=self.base_urls)
            for url, card in cards.items()
        }
        if not any(names_weights(card) for card in cards.values()):
            warn_name_only(self.model, self.base_urls)
        if len(set(seen.values())) > 1:
            raise ResumableStop(
                f"the replicas of model {self.model!r} report different models ("
                + "; ".join(f"{url}: {ident}" for url, ident in seen.items())
                + "); if they hold the same weights, declare `revision:` for the model in the "
                "deployment file; nothing was run",
                resume_when=f"the replicas of model {self.model!r} agree",
            )
        return next(iter(seen.values()))

    # --- requests --------------------------------------------------------------------------------
    async def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        n: int = 1,
        params: Mapping[str, Any] | None = None,
    ) -> Completion:
        """n samples of one prompt from the least busy live replica (see the module docstring).

        `RequestFailed` when every replica failed it (or it was refused) while the endpoint
        answers others; `ResumableStop` when the breaker is open."""
        params = dict(params or {})
        tried: set[str] = set()
        failures: list[str] = []
        failed_at: dict[str, float] = {}  # replica -> when this request first failed there
        sent = 0
        while (member := self._pick(tried)) is not None:
            self._raise_if_tripped()
            tried.add(member.url)
            member.replica.load += 1
            try:
                done = await self._on(member, model, messages, n, params, failed_at)
            except _Spent as e:
                sent += e.attempts
                self._raise_if_tripped()
                cause = f"{describe(e.last)} after {e.attempts} attempt(s)"
                failures.append(f"{member.url} model {model!r}: {cause}: {_brief(e.last)}")
                self._take_out(member, cause)
                continue
            finally:
                member.replica.load -= 1
            done.attempts += sent
            return done
        self.stats.failures += 1
        detail = "; ".join(failures)
        if self.tripped is None and not await self._answers_others(failed_at):
            where = f" on all {len(self._members)} replicas" if len(self._members) > 1 else ""
            self.tripped = f"model {self.model!r} is not answering{where} ({detail})"
            log.error("circuit breaker open: no more requests to model %r", self.model)
        self._raise_if_tripped()
        raise RequestFailed(detail)

    def _answered_since(self, failed_at: Mapping[str, float]) -> bool:
        return any(m.last_answer >= failed_at.get(m.url, 0.0) for m in self._members)

    async def _answers_others(self, failed_at: Mapping[str, float]) -> bool:
        """Whether the endpoint answers while a request keeps failing (`failed_at`: when it first
        failed on each replica): a replica answered since and one still lists its models (an
        answer may have been read just before it died), or else the probe is answered. Requests
        failing at once share one probe."""
        if self._answered_since(failed_at):
            return await self._reachable()
        async with self._probe_lock:
            return self._answered_since(failed_at) or await self._probe()

    async def _probe(self) -> bool:
        """One probe request to each replica in turn until one answers (counted as requests)."""
        for m in self._members:
            try:
                await m.replica.send(
                    self.model, PROBE_MESSAGES, 1, PROBE_PARAMS, (self.stats, m.stats)
                )
            except Exception:
                continue
            m.last_answer = time.monotonic()
            return True
        return False

    async def _reachable(self) -> bool:
        """Whether any replica still lists its models (a cheap call that spends no compute)."""
        for m in self._members:
            try:
                await m.replica.models(timeout=min(5.0, self.retry.timeout_s))
            except Exception:
                continue
            return True
        return False

    def _raise_if_tripped(self) -> None:
        if self.tripped is not None:
            raise ResumableStop(
                f"{self.tripped}; stopped instead of spending on (the samples drawn so far are "
                "cached)",
                resume_when=f"the endpoint of model {self.model!r} answers again",
            )

    def _pick(self, tried: set[str]) -> _Member | None:
        """The untried replica with the least load among those in service; when all are out,
        the one due back first (a probe: the request fails only once every replica failed it)."""
        left = [m for m in self._members if m.url not in tried]
        if not left:
            return None
        now = time.monotonic()
        up = [m for m in left if m.down_until <= now]
        if up:
            return min(up, key=lambda m: m.replica.load)
        return min(left, key=lambda m: m.down_until)

    def _take_out(self, member: _Member, cause: str) -> None:
        """Out of service for the back-off period; once, however many requests it failed."""
        now = time.monotonic()
        member.stats.failures += 1
        if member.down_until > now:
            return
        member.down_until = now + self.retry.replica_backoff_s
        member.out = True
        member.waves.clear()
        member.stats.taken_out += 1
        if len(self._members) > 1:
            live = sum(m.down_until <= now for m in self._members)
            log.warning(
                "replica %s of model %r taken out for %.0f s (%s); %d of %d in service",
                member.url,
                self.model,
                self.retry.replica_backoff_s,
                cause,
                live,
                len(self._members),
            )

    async def _on(
        self,
        member: _Member,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        n: int,
        params: Mapping[str, Any],
        failed_at: dict[str, float],
    ) -> Completion:
        """The request on one replica with its retries; `_Spent` when they are used up. The
        time of its first failed attempt there goes into `failed_at`."""
        limit = self.retry.max_attempts

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= limit or self.tripped is not None

        def wait(state: RetryCallState) -> float:
            e = state.outcome.exception() if state.outcome else None
            return self.retry.delay(state.attempt_number - 1, retryable(e)[1] if e else None)

        def before_sleep(state: RetryCallState) -> None:
            failed_at.setdefault(member.url, time.monotonic())
            member.stats.retries += 1
            self.stats.retries += 1
            e = state.outcome.exception() if state.outcome else None
            cause = describe(e) if e else "?"
            wave = (state.attempt_number, cause)
            if wave in member.waves:
                return
            member.waves.add(wave)
            log.warning(
                "retry: model %r at %s: %s, attempt %d/%d failed; retrying in %.2g s",
                model,
                member.url,
                cause if cause != "timeout" else f"timeout after {self.retry.timeout_s:g} s",
                state.attempt_number,
                limit,
                state.upcoming_sleep,
            )

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(lambda e: retryable(e)[0]),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            done: Completion = await retrying(
                member.replica.send, model, messages, n, params, (self.stats, member.stats)
            )
        except Exception as e:
            failed_at.setdefault(member.url, time.monotonic())
            tries = int(retrying.statistics.get("attempt_number", 1))
            if retryable(e)[0]:
                raise _Spent(e, tries) from e
            self.stats.failures += 1
            raise RequestFailed(
                f"{member.url} model {model!r}: {describe(e)} after {tries} attempt(s): {_brief(e)}"
            ) from e
        done.attempts = int(retrying.statistics.get("attempt_number", 1))
        self.answered += 1
        member.last_answer = time.monotonic()
        member.down_until = 0.0
        if member.out:
            member.out = False
            log.info("replica %s of model %r is back", member.url, self.model)
        member.waves.clear()
        return done

    async def aclose(self) -> None:
        """Replicas are closed by their `Endpoints`; a client made alone closes its own."""
        for m in self._members:
            await m.replica.aclose()


class Endpoints:
    """The endpoints of one executor: one `EndpointClient` per served model and set of URLs,
    replicas shared by URL, settings from the deployment file's entry for the model."""

    def __init__(
        self,
        deployment: Deployment | None,
        retry: RetryPolicy,
        *,
        start_embedded: bool = True,
    ):
        self.deployment = deployment
        self.retry = retry
        self.start_embedded = start_embedded
        self._replicas: dict[str, Replica] = {}
        self._clients: dict[tuple[str, tuple[str, ...]], EndpointClient] = {}
        self._retired: list[EndpointClient] = []  # closed, kept for their stats

    def entry(self, name: str) -> Endpoint | None:
        return self.deployment.models.get(name) if self.deployment else None

    def served_name(self, name: str) -> str:
        entry = self.entry(name)
        return (entry.served_name if entry and entry.served_name else None) or name

    def declared_urls(self, name: str, endpoint: str | None) -> list[str]:
        """The replicas of model `name` as declared: the deployment's list, unless the task names
        another endpoint (`embedded` left unresolved)."""
        entry = self.entry(name)
        if entry is not None and endpoint in (None, entry.base_url):
            return list(entry.base_urls)
        return [endpoint] if endpoint else []

    def urls(self, name: str, endpoint: str | None) -> list[str]:
        """The replicas of model `name`, `embedded` resolved to the running embedded server."""
        return [self._resolve(u) for u in self.declared_urls(name, endpoint)]

    def _resolve(self, url: str) -> str:
        if url != "embedded":
            return url.rstrip("/")
        from agenttts.environment.embedded import embedded_base_url

        try:
            return embedded_base_url(start=self.start_embedded).rstrip("/")
        except EmbeddedServerError as e:
            raise ResumableStop(str(e), resume_when="the embedded server runs") from None

    def client(self, name: str, endpoint: str | None = None) -> EndpointClient:
        """The client of model `name` (its task `endpoint`, else its deployment entry)."""
        urls = self.urls(name, endpoint)
        served = self.served_name(name)
        key = (served, tuple(urls))
        if key not in self._clients:
            entry = self.entry(name)
            replicas = [self._replica(u, entry) for u in urls]
            self._clients[key] = EndpointClient(
                served,
                replicas,
                supports_n=entry.supports_n if entry else True,
                retry=self.retry,
                revision=entry.revision if entry else None,
            )
        return self._clients[key]

    def _replica(self, url: str, entry: Endpoint | None) -> Replica:
        if url not in self._replicas:
            self._replicas[url] = Replica(
                url,
                api_key=entry.api_key() if entry else NO_KEY,
                max_concurrency=entry.max_concurrency if entry else 8,
                timeout_s=self.retry.timeout_s,
            )
        return self._replicas[url]

    async def identity(
        self, name: str, endpoint: str | None = None, *, cache: SampleCache | None = None
    ) -> str:
        """What the sample cache keys model `name`'s samples on: the deployment's `revision` if
        it declares one; in a cache-only replay (`cache` given: no call may be made) the model
        the cache holds under this name; else the model the endpoint reports."""
        entry = self.entry(name)
        served = self.served_name(name)
        if entry is not None and entry.revision is not None:
            return model_identity(served, revision=entry.revision)
        if cache is not None:
            urls = [
                masked(u.rstrip("/")) for u in self.declared_urls(name, endpoint) if u != "embedded"
            ]
            return cache.identity_of(served, servers=urls)
        return await self.client(name, endpoint).identify()

    @property
    def clients(self) -> list[EndpointClient]:
        return list(self._clients.values())

    @property
    def all_clients(self) -> list[EndpointClient]:
        """Every client made, those `aclose` released included: stats outlive the connections."""
        return [*self._retired, *self._clients.values()]

    @property
    def requests(self) -> int:
        """HTTP requests sent (retries included)."""
        return sum(c.stats.requests for c in self.all_clients)

    def replica_stats(self) -> dict[str, EndpointStats]:
        """Each server's requests, every model together."""
        return {r.shown: r.stats for r in self._replicas.values()}

    async def aclose(self) -> None:
        """Close every connection; a later `client` opens new ones."""
        for r in self._replicas.values():
            await r.aclose()
        self._retired.extend(self._clients.values())
        self._replicas.clear()
        self._clients.clear()
