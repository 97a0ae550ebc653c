"""The agent client against a real HTTP server on 127.0.0.1 that returns canned completions."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from agenttts.environment.deployment import Endpoint, api_key_from
from agenttts.errors import ResumableStop
from agenttts.graph.context import Context
from agenttts.llm import AgentClient, extract_json, resolve_base_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from openai_server import CannedServer, Reply


class Pick(BaseModel):
    stage: str
    samples: int


class Picks(BaseModel):
    picks: list[Pick]
    note: str = ""


GOOD = '{"picks": [{"stage": "qa", "samples": 4}], "note": "ok"}'


def client(url: str, **kw) -> AgentClient:
    return AgentClient(Context().agent_endpoint(base_url=url, model="canned", **kw))


def test_structured_answer_sends_json_schema_and_counts_usage():
    with CannedServer([Reply(GOOD, prompt_tokens=50, completion_tokens=9)]) as srv:
        ans = client(srv.url, temperature=0.3, max_tokens=77).structured(
            [("system", "s"), ("user", "u")], Picks, seed=5
        )
    assert ans.ok and ans.value is not None
    assert ans.value.picks[0].samples == 4 and not ans.errors
    assert (ans.usage.calls, ans.usage.prompt_tokens, ans.usage.completion_tokens) == (1, 50, 9)
    req = srv.requests[0]
    assert req["response_format"]["type"] == "json_schema"
    assert req["response_format"]["json_schema"]["schema"]["title"] == "Picks"
    assert (req["temperature"], req["max_completion_tokens"], req["seed"]) == (0.3, 77, 5)


@pytest.mark.parametrize(
    "content",
    [
        f"Sure! Here is my answer:\n{GOOD}\nGood luck.",
        f"```json\n{GOOD}\n```",
        '[{"stage": "qa", "samples": 4}]',  # a bare list for the schema's one list field
    ],
)
def test_json_wrapped_by_a_weak_model_is_recovered_without_reasking(content):
    with CannedServer([Reply(content)]) as srv:
        ans = client(srv.url).structured([("user", "u")], Picks)
    assert ans.ok and ans.value is not None
    assert ans.value.picks == [Pick(stage="qa", samples=4)]
    assert len(srv.requests) == 1


def test_truncated_answer_is_reasked_with_the_reason_and_then_used():
    replies = [Reply('{"picks": [{"stage": "qa", "sam', finish_reason="length"), Reply(GOOD)]
    with CannedServer(replies) as srv:
        ans = client(srv.url, max_tokens=12).structured([("user", "u")], Picks)
    assert ans.ok and ans.usage.calls == 2 and ans.usage.failures == 0
    assert "cut off at the token limit (12)" in ans.errors[0]
    retry = srv.requests[1]["messages"]
    assert retry[-2]["role"] == "assistant" and retry[-2]["content"].startswith('{"picks"')
    assert "cut off" in retry[-1]["content"] and "Picks" in retry[-1]["content"]


def test_unusable_answers_stop_after_the_bounded_retries():
    with CannedServer([Reply("I would rather chat about the weather.")]) as srv:
        ans = client(srv.url, max_parse_retries=2).structured([("user", "u")], Picks)
    assert ans.value is None and len(srv.requests) == 3
    assert len(ans.errors) == 3 and all("no JSON" in e for e in ans.errors)
    assert ans.usage.calls == 3 and ans.usage.failures == 1
    assert ans.usage.prompt_tokens == 300


def test_check_problems_are_fed_back():
    bad = '{"picks": [{"stage": "nope", "samples": 4}]}'
    with CannedServer([Reply(bad), Reply(GOOD)]) as srv:
        ans = client(srv.url).structured(
            [("user", "u")],
            Picks,
            check=lambda p: [f"unknown stage {x.stage!r}" for x in p.picks if x.stage != "qa"],
        )
    assert ans.ok and "unknown stage 'nope'" in ans.errors[0]
    assert "unknown stage 'nope'" in srv.requests[1]["messages"][-1]["content"]


def test_schema_mismatch_is_reasked():
    with CannedServer([Reply('{"picks": [{"stage": "qa"}]}'), Reply(GOOD)]) as srv:
        ans = client(srv.url).structured([("user", "u")], Picks)
    assert ans.ok and "picks.0.samples" in ans.errors[0]


def test_server_refusing_response_format_falls_back_to_plain_text():
    replies = [Reply(status=400, error="response_format json_schema unsupported"), Reply(GOOD)]
    with CannedServer(replies) as srv:
        ans = client(srv.url).structured([("user", "u")], Picks)
    assert ans.ok and "asking in plain text" in ans.errors[0]
    assert "response_format" in srv.requests[0] and "response_format" not in srv.requests[1]


def test_free_text_and_key_from_env_never_in_errors(monkeypatch):
    monkeypatch.setenv("C2_TEST_KEY", "sk-secret-123")
    with CannedServer([Reply("guidelines here", prompt_tokens=11, completion_tokens=3)]) as srv:
        said = client(srv.url, api_key_env="C2_TEST_KEY").complete([("user", "u")])
    assert said.text == "guidelines here" and said.usage.prompt_tokens == 11
    headers = {k.lower(): v for k, v in srv.headers[0].items()}
    assert headers["authorization"] == "Bearer sk-secret-123"
    with (
        CannedServer([Reply(status=401, error="bad key")]) as srv,
        pytest.raises(ResumableStop) as err,
    ):
        client(srv.url, api_key_env="C2_TEST_KEY").complete([("user", "u")])
    assert srv.url in str(err.value) and "sk-secret" not in str(err.value)


def test_unreachable_endpoint_names_the_url():
    with CannedServer([Reply("x")]) as srv:
        url = srv.url  # the port is free again once the server is gone
    c = client(url, timeout_s=5)
    with pytest.raises(ResumableStop, match=url.replace(".", r"\.")):
        c.complete([("user", "u")])
    with pytest.raises(ResumableStop):
        c.structured([("user", "u")], Picks)


def test_embedded_resolves_from_the_environment(monkeypatch):
    monkeypatch.setenv("AGENTTTS_EMBEDDED_URL", "http://127.0.0.1:1234/v1/")
    assert resolve_base_url("embedded") == "http://127.0.0.1:1234/v1"
    assert resolve_base_url("http://x/v1/") == "http://x/v1"
    monkeypatch.delenv("AGENTTTS_EMBEDDED_URL")
    # No server in this process either (under `make test` the session fixture may have one).
    monkeypatch.setattr("agenttts.environment.embedded.embedded_url", lambda: None)
    with pytest.raises(ResumableStop, match="no embedded server is running"):
        resolve_base_url("embedded")


def test_extract_json_cases():
    assert extract_json('x {"a": 1} y') == {"a": 1}
    assert extract_json("```\n[1, 2]\n```") == [1, 2]
    with pytest.raises(ValueError, match="malformed or cut off"):
        extract_json('{"a": [1, 2')
    with pytest.raises(ValueError, match="empty"):
        extract_json("   ")
    assert json.dumps(extract_json('{"a": {"b": 2}} and {"c": 3}')) == '{"a": {"b": 2}}'


def test_one_rule_for_a_key_variable_for_the_agent_and_the_pipeline_endpoints(monkeypatch):
    """An unset or empty variable is no key (the placeholder local servers accept), for the
    agent's client and a deployment's endpoints alike; a set one is the key."""
    endpoint = Endpoint(base_url="http://127.0.0.1:8000/v1", params=1e9, api_key_env="MY_KEY")
    monkeypatch.delenv("MY_KEY", raising=False)
    assert api_key_from("MY_KEY") == endpoint.api_key() == api_key_from(None) == "EMPTY"
    monkeypatch.setenv("MY_KEY", "")
    assert api_key_from("MY_KEY") == endpoint.api_key() == "EMPTY"
    monkeypatch.setenv("MY_KEY", "sk-test")
    assert api_key_from("MY_KEY") == endpoint.api_key() == "sk-test"


# --- timeouts that follow the server (an endpoint that is slow is not one that is gone) ---------


@pytest.fixture
def quick_first_calls(monkeypatch):
    """The first call's derived limit scaled to seconds: 1 s to the first token, then the cap at
    10 tokens/s (a 40-token cap: 5 s)."""
    from agenttts import agent_timing

    monkeypatch.setattr(agent_timing, "FIRST_CALL_S", 1.0)
    monkeypatch.setattr(agent_timing, "SLOWEST_TOKENS_PER_S", 10.0)


def test_a_slow_but_progressing_agent_is_waited_for_and_a_hanging_one_stopped(quick_first_calls):
    """An answer streamed a chunk every 0.25 s takes over 2 s: past a fixed 1 s limit (the old
    fixed timeout reported such an endpoint "unreachable"), within the limit derived from the cap
    and the speed. An endpoint that takes the request and sends nothing is still stopped, said to
    be hanging."""
    slow = Reply(GOOD, completion_tokens=20, token_delay_s=0.25)
    with CannedServer([slow]) as srv:
        ans = client(srv.url, max_tokens=40).structured([("user", "u")], Picks)
        assert ans.ok and ans.value is not None and ans.value.picks[0].samples == 4
        with pytest.raises(ResumableStop) as fixed:
            client(srv.url, max_tokens=40, timeout_s=1.0).structured([("user", "u")], Picks)
    message = str(fixed.value)
    assert re.search(r"is slow: \d+ tokens in \d+ s, past --agent-timeout-s \(1 s\)", message)
    assert "set it to 0 to wait for an answer as long as it streams" in message
    assert "raise --agent-timeout-s" in message and "unreachable" not in message
    assert all(r["stream"] for r in srv.requests)  # answers stream: progress is visible

    with CannedServer([Reply(hang=True)]) as srv:
        start = time.monotonic()
        with pytest.raises(ResumableStop, match="accepted the request but sent nothing for 5 s"):
            client(srv.url, max_tokens=40).complete([("user", "u")])
        assert time.monotonic() - start < 15


def test_an_unreachable_agent_is_said_to_be_unreachable():
    with CannedServer([Reply("x")]) as srv:
        url = srv.url
    with pytest.raises(ResumableStop, match="could not be reached"):
        client(url).complete([("user", "u")])


def test_the_derived_limit_follows_the_measured_speed():
    from agenttts.agent_timing import FIRST_CALL_S, SLOWEST_TOKENS_PER_S, Pace, call_limit

    assert call_limit(1024, None) == FIRST_CALL_S + 1024 / SLOWEST_TOKENS_PER_S
    slow, fast = Pace(20.0, 5.0), Pace(2.0, 30.0)
    assert call_limit(1024, slow) > call_limit(1024, fast) > call_limit(64, fast) >= FIRST_CALL_S
    assert call_limit(1024, slow, fixed=120.0) == 120.0
    assert fast.slower(slow) == Pace(20.0, 5.0)  # a later, slower endpoint is not "hanging"


# --- the agent users bring: reasoning models, each shape over the wire --------------------------

THOUGHT = 'The stage "qa" wants {more samples}; maybe {"samples": 8}? No: 4.'


@pytest.mark.parametrize(
    "reply",
    [
        Reply(f"<think>{THOUGHT}</think>\n{GOOD}"),  # a think preamble, braces in it
        Reply(f"{THOUGHT}</think>{GOOD}"),  # the chat template opened the block (Qwen3)
        Reply(GOOD, reasoning=THOUGHT, reasoning_tokens=30, completion_tokens=40),  # vLLM parser
        Reply(GOOD, reasoning=THOUGHT, reasoning_field="reasoning", completion_tokens=40),
    ],
    ids=["think-block", "think-closed-only", "reasoning_content", "reasoning-field"],
)
def test_a_reasoning_agents_thinking_is_kept_apart_from_its_answer(reply):
    with CannedServer([reply]) as srv:
        ans = client(srv.url).structured([("user", "u")], Picks)
        said = client(srv.url).complete([("user", "u")])
    assert ans.ok and ans.value is not None and ans.value.picks == [Pick(stage="qa", samples=4)]
    assert len(srv.requests) == 2 and not ans.errors  # read as it came: no re-ask
    assert ans.reasoning == THOUGHT and said.reasoning == THOUGHT
    assert said.text.strip() == GOOD
    assert ans.usage.completion_tokens == reply.completion_tokens  # the thinking costs too
    assert ans.usage.reasoning_tokens == reply.reasoning_tokens


def test_thinking_that_uses_the_whole_cap_is_asked_again_with_room():
    ran_out = Reply("", reasoning=THOUGHT * 20, finish_reason="length", completion_tokens=64)
    with CannedServer([ran_out, Reply(GOOD, reasoning=THOUGHT, completion_tokens=90)]) as srv:
        ans = client(srv.url, max_tokens=64).structured([("user", "u")], Picks)
        later = client(srv.url, max_tokens=64).complete([("user", "u")])
    assert ans.ok and ans.value is not None
    caps = [r["max_completion_tokens"] for r in srv.requests]
    assert caps == [64, 256, 256]  # raised once, and kept for the endpoint's next calls
    assert "thinking used all 64 tokens before it answered" in ans.errors[0]
    assert ans.usage.calls == 2 and ans.usage.completion_tokens == 64 + 90
    assert later.text == GOOD


def test_an_o_series_endpoint_refusing_the_temperature_is_asked_with_its_default():
    with CannedServer([Reply(GOOD)], only_temperature=1.0) as srv:
        ans = client(srv.url, temperature=0.9).structured([("user", "u")], Picks)
        client(srv.url, temperature=0.9).complete([("user", "u")])
    assert ans.ok and srv.refused == 1
    assert [r.get("temperature") for r in srv.requests] == [0.9, None, None]
    assert "refuses temperature 0.9" in ans.errors[0]


def test_answers_are_replayed_from_the_agent_cache(tmp_path):
    """The same question (model, messages, sampling, seed) asked again, as a second demo asks it,
    is answered from the cache: no request, no tokens, counted as replayed."""
    cache = str(tmp_path / "agent.sqlite")
    with CannedServer(
        [Reply(GOOD, reasoning=THOUGHT, prompt_tokens=50, completion_tokens=9)]
    ) as srv:
        first = client(srv.url, cache=cache).structured([("user", "u")], Picks, seed=3)
        again = client(srv.url, cache=cache).structured([("user", "u")], Picks, seed=3)
        other = client(srv.url, cache=cache).structured([("user", "u")], Picks, seed=4)
    assert len(srv.requests) == 2  # the first question, and the one with another seed
    assert first.value == again.value == other.value and again.reasoning == THOUGHT
    assert (again.usage.calls, again.usage.replayed, again.usage.completion_tokens) == (0, 1, 0)
    assert first.usage.calls == 1 and first.usage.replayed == 0
