"""The agent client against a real HTTP server on 127.0.0.1 that returns canned completions."""

from __future__ import annotations

import json
import sys
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
        text, usage = client(srv.url, api_key_env="C2_TEST_KEY").complete([("user", "u")])
    assert text == "guidelines here" and usage.prompt_tokens == 11
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
