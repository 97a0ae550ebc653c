"""The agent's wire: any OpenAI-compatible chat endpoint through langchain-openai.

Every LLM proposer (AgentTTS, AgentHPO, MLCopilot) talks through `AgentClient`, so they share one
behaviour for the things that go wrong with real servers and weak models:

- structured output is asked for with `response_format` json_schema; when a server ignores or
  rejects it, or a small model wraps its JSON in prose, the JSON is dug out of the text;
- an unusable answer (no JSON, truncated JSON, a schema or task violation) is asked again at most
  `max_parse_retries` times with the reason fed back, then reported as errors, never raised;
- a server that cannot be reached (connection, timeout, authentication, unknown model) raises
  `ResumableStop`: the run stops and the same command resumes it;
- usage (calls, prompt and completion tokens) is counted from what the server reports.

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

from agenttts.environment.budget import M_UNIT, ND_UNIT, NP_UNIT, Counts
from agenttts.environment.deployment import api_key_from
from agenttts.errors import AgentError, ResumableStop
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
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Seconds one agent call may take before the endpoint counts as unreachable.",
    )
    max_tokens: int = Field(
        default=1024,
        ge=1,
        description="Most tokens one agent answer may hold: caps the agent's own cost and time.",
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
    completion_tokens: int = 0
    failures: int = 0  # agent steps with no usable answer after their re-asks
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
    """A `ChatOpenAI` for the endpoint (imported late: only LLM proposers pay for langchain)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=endpoint.model,
        base_url=resolve_base_url(endpoint.base_url),
        api_key=SecretStr(api_key_from(endpoint.api_key_env)),
        temperature=endpoint.temperature,
        max_completion_tokens=endpoint.max_tokens,  # the field `max_tokens`, by its alias
        timeout=endpoint.timeout_s,
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
    if prompt is None:  # servers that fill only response_metadata
        tu = (message.response_metadata or {}).get("token_usage") or {}
        prompt, completion = tu.get("prompt_tokens", 0), tu.get("completion_tokens", 0)
    return AgentUsage(
        calls=1, prompt_tokens=int(prompt or 0), completion_tokens=int(completion or 0)
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
    """A structured answer: the value when one was usable, what it cost, and why attempts failed."""

    value: M | None
    usage: AgentUsage = field(default_factory=AgentUsage)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.value is not None


def _unreachable(url: str, e: Exception) -> ResumableStop:
    import openai

    kind = {
        openai.APITimeoutError: "timed out",
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


def _fatal() -> tuple[type[openai.APIError], ...]:
    """The errors that mean the agent cannot be reached (`ResumableStop`)."""
    import openai

    return (
        openai.APIConnectionError,  # includes APITimeoutError
        openai.AuthenticationError,
        openai.PermissionDeniedError,
        openai.NotFoundError,
    )


class AgentClient:
    """One agent endpoint; `chat` may be injected (a fake) for unit tests of free-text paths."""

    def __init__(self, endpoint: AgentEndpoint, *, chat: Any | None = None):
        self.endpoint = endpoint
        self._chat = chat

    @property
    def url(self) -> str:
        return resolve_base_url(self.endpoint.base_url)

    def chat(self, seed: int | None = None) -> Any:
        if self._chat is None:
            self._chat = make_chat(self.endpoint)
        if seed is not None and hasattr(self._chat, "seed"):
            return self._chat.model_copy(update={"seed": seed})
        return self._chat

    # --- free text ---------------------------------------------------------------------------
    def complete(
        self, messages: Sequence[Message], *, seed: int | None = None
    ) -> tuple[str, AgentUsage]:
        """Free text. ResumableStop when the server is gone, AgentError when it refuses."""
        import openai

        try:
            msg = self.chat(seed).invoke(_messages(messages))
        except _fatal() as e:
            raise _unreachable(self._safe_url(), e) from None
        except openai.APIStatusError as e:
            raise AgentError(
                f"agent endpoint {self._safe_url()} answered HTTP {e.status_code}: {_brief(e)}"
            ) from None
        return _text_of(msg), _usage_of(msg)

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
            text, msg, problem = "", None, None
            try:
                if use_schema:
                    # A JSON-schema dict, not the class: the client's own pydantic parse would
                    # raise on a bad answer and lose its text and usage, which we report.
                    runnable = self.chat(call_seed).with_structured_output(
                        response_format(schema, wire_schema), method="json_schema", include_raw=True
                    )
                    out = runnable.invoke(convo)
                    msg = out.get("raw")
                    text = _text_of(msg)
                    value = None
                    if isinstance(out.get("parsed"), dict | list):
                        try:
                            value = _validate(schema, out["parsed"])
                        except ValidationError as e:
                            problem = _schema_problem(e)
                else:
                    msg = self.chat(call_seed).invoke(convo)
                    text, value = _text_of(msg), None
                answer.usage = answer.usage + _usage_of(msg)
            except _fatal() as e:
                raise _unreachable(self._safe_url(), e) from None
            except openai.LengthFinishReasonError as e:
                u = e.completion.usage
                answer.usage = answer.usage + AgentUsage(
                    calls=1,
                    prompt_tokens=u.prompt_tokens if u else 0,
                    completion_tokens=u.completion_tokens if u else 0,
                )
                text = (
                    (e.completion.choices[0].message.content or "") if e.completion.choices else ""
                )
                value = None
                problem = (
                    f"the answer was cut off at the token limit ({self.endpoint.max_tokens}); "
                    "answer more briefly"
                )
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
            except (ValueError, TypeError) as e:  # the parse endpoint's own validation
                answer.usage = answer.usage + AgentUsage(calls=1)
                value, problem = None, f"unusable answer: {str(e)[:200]}"
            if value is None and problem is None:
                try:  # no usable parse: dig the JSON out of prose or a code fence
                    value = _validate(schema, extract_json(text))
                except ValidationError as e:
                    problem = _schema_problem(e)
                except ValueError as e:
                    problem = str(e)
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
