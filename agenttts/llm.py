"""The agent's wire: any OpenAI-compatible chat endpoint through langchain-openai.

Every LLM proposer (AgentTTS, AgentHPO, MLCopilot) talks through `AgentClient`, so they share one
behaviour for the things that go wrong with real servers and weak models:

- structured output is asked for with `response_format` json_schema; when a server ignores or
  rejects it, or a small model wraps its JSON in prose, the JSON is dug out of the text;
- an unusable answer (no JSON, truncated JSON, a schema or task violation) is asked again at most
  `max_parse_retries` times with the reason fed back, then reported as errors, never raised;
- answers are streamed, and a call's time limit follows the endpoint (`agenttts.agent_timing`):
  unless `timeout_s` fixes one, an answer that keeps streaming is waited for and only silence is
  limited, to a wait derived from the answer's token cap and the endpoint's measured speed; one
  that sends nothing that long is stopped as hanging, one still writing past a fixed limit as
  slow (with what it sent), and one that cannot be reached at all as unreachable: each a
  `ResumableStop` saying which (authentication and an unknown model too), so the run stops and
  the same command resumes it;
- a reasoning model's thinking, in whichever shape it comes, is kept apart from its answer
  (`agenttts.reasoning`): thinking that uses the whole cap is asked again with a larger one, and an
  endpoint that refuses the temperature (o-series) is asked without one;
- usage (calls, prompt, completion and reasoning tokens) is counted from what the server reports;
  with `cache` set, an answer already given to the same question is replayed
  (`agenttts.agent_cache`) and counted as replayed, at no cost.

This module is the client's one home: where the agent lives (`AgentEndpoint`, built from the run's
`agent_*` settings) and what asking it cost (`AgentUsage`) are declared here, below the proposers
that use them. The key is read from the environment variable the endpoint names, at call time
(`deployment.api_key_from`, the same reader as the pipeline's endpoints), and is never part of an
error message, a log line or a return value. `openai` is imported on the first call, so a search
without an agent never loads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from agenttts.agent_timing import Pace, Streamed, TooSlow, call_limit, read_stream
from agenttts.environment.budget import M_UNIT, ND_UNIT, NP_UNIT, Counts
from agenttts.environment.deployment import api_key_from
from agenttts.errors import AgentError, ResumableStop
from agenttts.reasoning import KEPT_AS, refuses_temperature, split_thinking
from agenttts.urls import masked

if TYPE_CHECKING:
    import openai

M = TypeVar("M", bound=BaseModel)


class AgentEndpoint(BaseModel):
    """Where an LLM proposer's agent lives and how it is asked: the one declaration of the agent
    settings. Each field but the re-ask count is the run setting `agent_<field>`
    (`graph/context.py` takes its type, default, bounds and description from here, and adds only
    what the command line and the search need); the key is read from `api_key_env` at call time.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="smollm2", description="Model name the agent endpoint serves (LLM proposers only)."
    )
    base_url: str = Field(
        default="embedded",
        description="OpenAI-compatible base URL of the agent, e.g. http://127.0.0.1:8000/v1; "
        "'embedded' means the server agenttts starts itself.",
    )
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="NAME of the environment variable holding the agent's key (the key itself is "
        "never stored). Local servers need none.",
    )
    temperature: float = Field(
        default=0.9,
        ge=0,
        le=2,
        description="Sampling temperature of the agent (the paper uses 0.9; OpenAI's range, 0 to "
        "2).",
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Seconds one agent call may take (one still writing past it is stopped as "
        "slow); empty (0 on the command line): an answer that keeps streaming is waited for, "
        "and only silence is limited, to a wait derived from the answer's token cap and the "
        "endpoint's measured "
        "speed (three times what the cap takes at it, at least 120 s): an endpoint that sends "
        "nothing that long is stopped as hanging.",
    )
    max_tokens: int = Field(
        default=1024,
        ge=1,
        description="Most tokens one agent answer may hold, a reasoning model's thinking included: "
        "caps the agent's own cost and time (thinking that uses it all is asked again with 4x).",
    )
    cache: str | None = Field(
        default=None,
        description="SQLite file keeping the agent's answers: asked the same question again "
        "(model, messages, sampling, seed), as a repeated demo is, the agent answers from it at "
        "no cost; empty: off.",
    )
    params: float | None = Field(
        default=None,
        gt=0,
        description="Parameter count of the agent model, to count its tokens in the search cost "
        "(the budget formula with these parameters); empty: the embedded server's own size when "
        "the agent is 'embedded', else agent tokens are reported but cost no units.",
    )
    max_parse_retries: int = 2

    def cost_params(self) -> float | None:
        """The agent's parameter count for its search cost: the `agent_params` setting, else the
        embedded server's own size when the agent is the embedded server, else unknown (None)."""
        if self.params is not None:
            return self.params
        if self.base_url == "embedded":
            from agenttts.environment.embedded import EMBEDDED_PARAMS

            return EMBEDDED_PARAMS
        return None


@dataclass
class AgentUsage(Counts):
    """What the search itself spent on its agent (not the environment): one agent step's (a
    node's proposer call: its tokens and its wall time), or the run's total in `agent_usage`."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0  # a reasoning model's thinking included
    reasoning_tokens: int = 0  # of completion_tokens, where the server says
    failures: int = 0  # agent steps with no usable answer after their re-asks
    replayed: int = 0  # answers from the agent cache (`cache`): no call, no tokens
    seconds: float = 0.0

    def search_cost(self, params: float | None) -> float:
        """These calls in the search's budget unit: the paper's formula with the agent's
        parameters, each call reading its prompt once and writing its completion as one sample,
        ((M / 3e9) * (prompt + completion tokens) - 128 * calls) / 64, at least 0. Unknown
        parameters (None): 0 -- the tokens are still reported."""
        if not params or not self.calls:
            return 0.0
        tokens = self.prompt_tokens + self.completion_tokens
        return max(0.0, ((params / M_UNIT) * tokens - NP_UNIT * self.calls) / ND_UNIT)


#: How much of a rejected answer is echoed back when re-asking (small models have small contexts).
_ECHO_CHARS = 600


Message = BaseMessage | tuple[str, str]


def resolve_base_url(base_url: str) -> str:
    """`embedded` -> the URL of agenttts' own server; anything else is used as given."""
    if base_url != "embedded":
        return base_url.rstrip("/")
    from agenttts.environment.embedded import ENV_URL, embedded_url

    url = embedded_url()  # $AGENTTTS_EMBEDDED_URL, else this process's server
    if url:
        return url.rstrip("/")
    raise ResumableStop(
        "the agent endpoint is 'embedded' but no embedded server is running: start one with "
        f"`agenttts serve`, set {ENV_URL}, or give the agent an explicit base URL",
        resume_when="the agent's server is running",
    )


def make_chat(endpoint: AgentEndpoint, *, seed: int | None = None) -> Any:
    """A streaming `ChatOpenAI` for the endpoint that keeps a reasoning model's thinking
    (imported late: only LLM proposers pay for langchain). Temperature, token cap and time limit
    are set per call (`AgentClient._ask`)."""
    from agenttts.reasoning import reasoning_chat_openai

    return reasoning_chat_openai()(
        model=endpoint.model,
        base_url=resolve_base_url(endpoint.base_url),
        api_key=SecretStr(api_key_from(endpoint.api_key_env)),
        temperature=None,
        streaming=True,
        stream_usage=True,
        max_retries=1,
        seed=seed,
    )


def _messages(messages: Sequence[Message]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for m in messages:
        if isinstance(m, BaseMessage):
            out.append(m)
            continue
        role, text = m
        out.append(SystemMessage(text) if role == "system" else HumanMessage(text))
    return out


def _usage_of(message: AIMessage | None) -> AgentUsage:
    if message is None:
        return AgentUsage(calls=1)
    meta: Mapping[str, Any] = message.usage_metadata or {}
    prompt = meta.get("input_tokens")
    completion = meta.get("output_tokens")
    reasoning = (meta.get("output_token_details") or {}).get("reasoning")
    if prompt is None:  # servers that fill only response_metadata
        tu = (message.response_metadata or {}).get("token_usage") or {}
        prompt, completion = tu.get("prompt_tokens", 0), tu.get("completion_tokens", 0)
        reasoning = (tu.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return AgentUsage(
        calls=1,
        prompt_tokens=int(prompt or 0),
        completion_tokens=int(completion or 0),
        reasoning_tokens=int(reasoning or 0),
    )


def _text_of(message: AIMessage | None) -> str:
    if message is None:
        return ""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The first JSON value in `text`: bare, fenced in ``` or embedded in prose.

    Raises ValueError naming what was wrong (nothing found, or where a truncated value stops).
    """
    text = text.strip()
    if not text:
        raise ValueError("the answer was empty")
    candidates = [text, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for c in candidates:
        try:
            return json.loads(c)
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    last_error: json.JSONDecodeError | None = None
    for i, ch in enumerate(text):
        if ch not in "{[":
            continue
        try:
            value, _ = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            last_error = last_error or e
            continue
        if isinstance(value, dict | list) and value:
            return value
    if last_error is not None:
        raise ValueError(f"the JSON in the answer is malformed or cut off ({last_error.msg})")
    raise ValueError("the answer contains no JSON object")


def _validate(schema: type[M], value: Any) -> M:
    """Validate, accepting a bare list where the schema has exactly one list field (weak models
    often answer `[...]` for `{"configs": [...]}`)."""
    if isinstance(value, list):
        list_fields = [
            n
            for n, f in schema.model_fields.items()
            if getattr(f.annotation, "__origin__", None) is list
        ]
        if len(list_fields) == 1:
            value = {list_fields[0]: value}
    return schema.model_validate(value)


def response_format(schema: type[BaseModel], wire: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `response_format.json_schema` body for a pydantic schema (not strict: vLLM enforces
    the schema by guided decoding anyway, and OpenAI's strict mode forbids open mappings)."""
    body = wire if wire is not None else schema.model_json_schema()
    return {"name": schema.__name__, "schema": body, "strict": False}


def _schema_problem(e: ValidationError) -> str:
    return f"the answer does not match the required JSON schema: {_short_validation(e)}"


def _short_validation(e: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, x['loc'])) or '<root>'}: {x['msg']}" for x in e.errors()[:5]]
    more = f" (+{e.error_count() - 5} more)" if e.error_count() > 5 else ""
    return "; ".join(parts) + more


@dataclass
class Answer(Generic[M]):
    """A structured answer: the value when one was usable, what it cost, why attempts failed, and
    a reasoning model's thinking before it."""

    value: M | None
    usage: AgentUsage = field(default_factory=AgentUsage)
    errors: list[str] = field(default_factory=list)
    reasoning: str = ""

    @property
    def ok(self) -> bool:
        return self.value is not None


@dataclass
class Said:
    """One call's answer: its text (the thinking taken out), the thinking, why it ended, what it
    cost, and what the client changed to get it (a refused temperature, a raised cap)."""

    text: str
    reasoning: str = ""
    finish_reason: str | None = None
    usage: AgentUsage = field(default_factory=AgentUsage)
    notes: list[str] = field(default_factory=list)


def _unreachable(url: str, e: Exception, limit: float, got: Streamed) -> ResumableStop:
    """Why the agent endpoint cannot be used now: unreachable, hanging (it took the request and
    then sent nothing within the call's limit), or a refusal of the key or the model."""
    import openai

    silent = (
        f"sent {got.tokens} tokens in {got.seconds:.0f} s, then nothing for {limit:.0f} s"
        if got.tokens
        else f"accepted the request but sent nothing for {limit:.0f} s"
    )
    kind = {
        openai.APITimeoutError: f"{silent} (hanging; a slow endpoint that writes is waited for)",
        openai.APIConnectionError: "could not be reached",
        openai.AuthenticationError: "refused the key (authentication failed)",
        openai.PermissionDeniedError: "refused the request (permission denied)",
        openai.NotFoundError: "does not serve this model or path",
    }
    what = next((v for k, v in kind.items() if isinstance(e, k)), "failed")
    return ResumableStop(
        f"agent endpoint {url} {what}: {type(e).__name__}",
        resume_when="the agent endpoint is reachable",
    )


def _slow(url: str, e: TooSlow) -> ResumableStop:
    return ResumableStop(
        f"agent endpoint {url} is slow: {e.tokens} tokens in {e.seconds:.0f} s, past "
        f"--agent-timeout-s ({e.limit:.0f} s); raise --agent-timeout-s, or set it to 0 to wait "
        "for an answer as long as it streams (or lower --agent-max-tokens)",
        resume_when="the endpoint answers, only slowly",
        with_flags="--agent-timeout-s 0",
    )


def _fatal() -> tuple[type[openai.APIError], ...]:
    """The errors that mean the agent cannot be reached (`ResumableStop`)."""
    import openai

    return (
        openai.APIConnectionError,  # includes APITimeoutError
        openai.AuthenticationError,
        openai.PermissionDeniedError,
        openai.NotFoundError,
    )


#: A cap that thinking used up is raised this many times over, at most to `THINKING_CAP`.
CAP_GROWTH = 4
THINKING_CAP = 32_768


@dataclass
class _Learned:
    """What calls to one endpoint taught this process, for the next calls (proposers are made
    anew each step): its measured pace, a cap raised for thinking, a temperature it refuses."""

    pace: Pace | None = None
    cap: int | None = None
    no_temperature: bool = False


_LEARNED: dict[tuple[str, str], _Learned] = {}


def forget_endpoints() -> None:
    """Drop what this process learned about agent endpoints (tests reuse ports)."""
    _LEARNED.clear()


class AgentClient:
    """One agent endpoint; `chat` may be injected (a fake) for unit tests of free-text paths."""

    def __init__(self, endpoint: AgentEndpoint, *, chat: Any | None = None):
        self.endpoint = endpoint
        self._chat = chat
        self._answers: Any = None

    @property
    def url(self) -> str:
        return resolve_base_url(self.endpoint.base_url)

    @property
    def learned(self) -> _Learned:
        return _LEARNED.setdefault((self.endpoint.base_url, self.endpoint.model), _Learned())

    def chat(self, seed: int | None = None) -> Any:
        if self._chat is None:
            self._chat = make_chat(self.endpoint)
        if seed is not None and hasattr(self._chat, "seed"):
            return self._chat.model_copy(update={"seed": seed})
        return self._chat

    # --- one call --------------------------------------------------------------------------------
    def _params(self, seed: int | None, response_format: dict[str, Any] | None) -> dict[str, Any]:
        """What the request asks, beyond the messages: as the answer cache keys it."""
        learned = self.learned
        params: dict[str, Any] = {
            "max_completion_tokens": learned.cap or self.endpoint.max_tokens,
            "seed": seed,
        }
        if not learned.no_temperature:
            params["temperature"] = self.endpoint.temperature
        if response_format is not None:
            params["response_format"] = {"type": "json_schema", "json_schema": response_format}
        return params

    def _ask(
        self, convo: list[BaseMessage], seed: int | None, response_format: dict[str, Any] | None
    ) -> Said:
        """One answer, streamed under the call's time limit (see the module docstring). Asked
        again, not re-asked, when the endpoint refuses the temperature or the thinking used the
        whole cap. ResumableStop when the endpoint cannot be used; another HTTP error raises."""
        import openai

        notes: list[str] = []
        usage = AgentUsage()
        while True:
            params = self._params(seed, response_format)
            stored = self._stored(convo, params)
            if stored is not None:
                stored.notes[:0] = notes
                return stored
            learned = self.learned
            cap = params["max_completion_tokens"]
            limit = call_limit(cap, learned.pace, self.endpoint.timeout_s)
            request = {k: v for k, v in params.items() if k not in ("seed", "response_format")}
            extra = {"response_format": params["response_format"]} if response_format else None
            streamed = Streamed()
            try:
                chunks = self.chat(seed).stream(
                    convo,
                    **request,
                    timeout=(10.0, limit, 30.0, 30.0),  # connect, any silence, write, pool
                    extra_body=extra,  # not LangChain's parse path: the text is read here
                )
                read_stream(chunks, streamed, total=self.endpoint.timeout_s)
            except TooSlow as e:
                raise _slow(self._safe_url(), e) from None
            except _fatal() as e:
                raise _unreachable(self._safe_url(), e, limit, streamed) from None
            except openai.APIStatusError as e:
                if "temperature" in params and refuses_temperature(e.status_code, _brief(e)):
                    learned.no_temperature = True
                    usage = usage + AgentUsage(calls=1)
                    notes.append(
                        f"the endpoint refuses temperature {self.endpoint.temperature:g} "
                        f"({_brief(e)}): asked again with its default"
                    )
                    continue
                raise
            said = self._said(streamed.message, usage, notes)
            measured = streamed.pace()
            learned.pace = measured.slower(learned.pace) if measured else learned.pace
            ran_out = said.finish_reason == "length" and not said.text.strip() and said.reasoning
            if ran_out and cap < THINKING_CAP:
                learned.cap = min(cap * CAP_GROWTH, THINKING_CAP)
                usage = said.usage
                notes.append(
                    f"the agent's thinking used all {cap} tokens before it answered: asked again "
                    f"with a cap of {learned.cap} (--agent-max-tokens sets where it starts)"
                )
                continue
            self._store(convo, params, streamed.message, said)
            return said

    @staticmethod
    def _said(message: Any, before: AgentUsage, notes: list[str]) -> Said:
        """The streamed message read: thinking from its own field or a `<think>` block."""
        content = _text_of(message)
        thinking, text = split_thinking(content)
        field_thinking = (message.additional_kwargs or {}).get(KEPT_AS, "") if message else ""
        reasoning = "\n\n".join(x for x in (field_thinking, thinking) if x)
        finish = (message.response_metadata or {}).get("finish_reason") if message else None
        return Said(text, reasoning, finish, before + _usage_of(message), list(notes))

    # --- the answer cache ------------------------------------------------------------------------
    def _cache(self) -> Any:
        """The endpoint's stored answers, opened on first use (None when `cache` is off)."""
        if self.endpoint.cache is None:
            return None
        if self._answers is None:
            from agenttts.agent_cache import AgentAnswers

            self._answers = AgentAnswers(self.endpoint.cache, self.endpoint.model, self._card())
        return self._answers

    def _card(self) -> dict[str, Any] | None:
        """The agent model's `/models` entry (what the cache keys its answers on), if listed."""
        try:
            listed = self.chat().root_client.models.list()
        except Exception:  # an endpoint without /models: the name alone keys the answers
            return None
        card = next((m for m in listed.data if m.id == self.endpoint.model), None)
        return card.model_dump() if card is not None else None

    def _key(self, convo: list[BaseMessage], params: dict[str, Any]) -> tuple[Any, list[Any]]:
        from langchain_core.messages import convert_to_openai_messages

        messages = list(convert_to_openai_messages(convo))
        return self._cache().key(messages, params), messages

    def _stored(self, convo: list[BaseMessage], params: dict[str, Any]) -> Said | None:
        if self._cache() is None:
            return None
        key, _ = self._key(convo, params)
        hit = self._cache().get(key)
        if hit is None:
            return None
        thinking, text = split_thinking(hit.text)
        return Said(text, thinking, hit.finish_reason, AgentUsage(replayed=1))

    def _store(
        self, convo: list[BaseMessage], params: dict[str, Any], message: Any, said: Said
    ) -> None:
        from agenttts.agent_cache import StoredAnswer

        if self._cache() is None or message is None:
            return
        key, messages = self._key(convo, params)
        kept = f"<think>{said.reasoning}</think>{said.text}" if said.reasoning else said.text
        u = _usage_of(message)
        answer = StoredAnswer(kept, u.prompt_tokens, u.completion_tokens, said.finish_reason)
        self._cache().put(key, messages, params, answer)

    # --- free text ---------------------------------------------------------------------------
    def complete(self, messages: Sequence[Message], *, seed: int | None = None) -> Said:
        """Free text. ResumableStop when the server is gone, AgentError when it refuses."""
        import openai

        try:
            return self._ask(_messages(messages), seed, None)
        except openai.APIStatusError as e:
            raise AgentError(
                f"agent endpoint {self._safe_url()} answered HTTP {e.status_code}: {_brief(e)}"
            ) from None

    # --- structured --------------------------------------------------------------------------
    def structured(
        self,
        messages: Sequence[Message],
        schema: type[M],
        *,
        check: Callable[[M], list[str]] | None = None,
        seed: int | None = None,
        wire_schema: dict[str, Any] | None = None,
    ) -> Answer[M]:
        """A `schema` instance, re-asked up to `max_parse_retries` times when unusable.

        `check` returns problems that make an otherwise valid answer unusable (an unknown stage,
        say); they are fed back like parse errors. `wire_schema`, when given, is what the server is
        asked to follow (tighter than `schema`: enums of valid names, length limits, so guided
        decoding keeps a weak model short and on the menu) while `schema` still validates.
        Never raises for a bad answer; raises ResumableStop when the server cannot be reached.
        """
        import openai

        base = _messages(messages)
        answer: Answer[M] = Answer(value=None)
        use_schema = True
        convo = list(base)
        for attempt in range(1 + self.endpoint.max_parse_retries):
            call_seed = None if seed is None else seed + attempt
            wire = response_format(schema, wire_schema) if use_schema else None
            try:
                said = self._ask(convo, call_seed, wire)
            except openai.APIStatusError as e:
                answer.usage = answer.usage + AgentUsage(calls=1)
                if use_schema and e.status_code in (400, 422, 500, 501):
                    # A server that rejects json_schema: ask for JSON in prose instead.
                    answer.errors.append(
                        f"structured output refused (HTTP {e.status_code}: {_brief(e)}); "
                        "asking in plain text"
                    )
                    use_schema = False
                    continue
                answer.errors.append(f"agent call failed (HTTP {e.status_code}: {_brief(e)})")
                break
            answer.usage = answer.usage + said.usage
            answer.errors += said.notes
            answer.reasoning = said.reasoning or answer.reasoning
            text, value, problem = said.text, None, None
            try:  # the JSON, bare, fenced or in prose
                value = _validate(schema, extract_json(text))
            except ValidationError as e:
                problem = _schema_problem(e)
            except ValueError as e:
                problem = str(e)
                if said.finish_reason == "length":
                    problem = (
                        f"the answer was cut off at the token limit "
                        f"({self.learned.cap or self.endpoint.max_tokens}); answer more briefly"
                    )
            if value is not None and check is not None:
                issues = check(value)
                if issues:
                    problem = "the answer breaks the task's rules: " + "; ".join(issues)
                    value = None
            if value is not None:
                answer.value = value
                return answer
            answer.errors.append(f"attempt {attempt + 1}: {problem}")
            convo = [
                *base,
                AIMessage(text[:_ECHO_CHARS] + ("…" if len(text) > _ECHO_CHARS else "")),
                HumanMessage(
                    f"That answer could not be used: {problem}. Answer again with only one JSON "
                    f"object that matches this schema: {json.dumps(schema.model_json_schema())}"
                ),
            ]
        answer.usage = answer.usage + AgentUsage(failures=1)
        return answer

    def _safe_url(self) -> str:
        """The URL as messages show it: resolved where it can be, its password masked."""
        try:
            return masked(self.url)
        except ResumableStop:
            return masked(self.endpoint.base_url)


def _brief(e: openai.APIStatusError) -> str:
    """The server's message, short, and never the request (which carries the key in headers)."""
    body = e.body
    if isinstance(body, dict):
        inner = body.get("error")
        msg = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if msg:
            return str(msg)[:200]
    return str(e.message)[:200]
