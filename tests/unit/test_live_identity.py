"""What the sample cache keys on (the model behind a served name); replicas in a deployment."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from agenttts.environment.deployment import Deployment, Endpoint
from agenttts.environment.live.cache import Sample, SampleCache, model_identity, request_key
from agenttts.errors import InputError, TrialError

MSG = [{"role": "user", "content": "Q?"}]
PARAMS = {"temperature": 0.9, "max_tokens": 8}
# what vLLM 0.32 (CPU) lists for the embedded server, `created` being the time of the request
VLLM_CARD = {
    "id": "smollm2",
    "object": "model",
    "created": 1795483548,
    "owned_by": "vllm",
    "root": "/root/.cache/agenttts/smollm2-135m-instruct-hf",
    "parent": None,
    "max_model_len": 4096,
    "permission": [{"id": "modelperm-8ed249cd33cbc0ec"}],
}


def test_the_identity_is_what_names_the_weights_not_when_or_where_it_was_asked():
    ident = model_identity("smollm2", VLLM_CARD)
    assert ident == (
        '{"id":"smollm2","owned_by":"vllm","root":"/root/.cache/agenttts/smollm2-135m-instruct-hf"}'
    )
    later = {**VLLM_CARD, "created": 1795489999, "permission": [{"id": "modelperm-other"}]}
    assert model_identity("smollm2", later) == ident
    assert model_identity("smollm2", {**VLLM_CARD, "root": "Qwen/Qwen2.5-7B"}) != ident
    lora = {**VLLM_CARD, "root": "/adapters/a", "parent": "smollm2-base"}
    assert model_identity("smollm2", lora) != ident
    # a declared revision wins over whatever the server reports
    assert model_identity("smollm2", VLLM_CARD, revision="abc") == model_identity(
        "smollm2", {"root": "/elsewhere"}, revision="abc"
    )
    assert request_key(ident, MSG, PARAMS) != request_key("smollm2", MSG, PARAMS)


def test_a_replay_without_a_server_finds_the_one_model_the_cache_holds(tmp_path):
    cache = SampleCache(tmp_path / "c.sqlite")
    assert cache.identity_of("smollm2") == "smollm2"  # nothing recorded: the bare name
    ident = model_identity("smollm2", VLLM_CARD)
    key = request_key(ident, MSG, PARAMS)
    cache.put(key, model="smollm2", identity=ident, messages=MSG, params=PARAMS,
              prompt_tokens=5, samples=[Sample(0, "a", 1)])  # fmt: skip
    assert cache.identity_of("smollm2") == ident
    assert cache.identity_of("other") == "other"
    other = model_identity("smollm2", {**VLLM_CARD, "root": "/b"})
    cache.put(request_key(other, MSG, PARAMS), model="smollm2", identity=other, messages=MSG,
              params=PARAMS, prompt_tokens=5, samples=[Sample(0, "b", 1)])  # fmt: skip
    with pytest.raises(TrialError, match="holds samples of 2 different models served as"):
        cache.identity_of("smollm2")


def test_a_cache_from_before_identities_stays_readable(tmp_path):
    """Old rows were keyed on the bare served name: a cache-only replay still finds them."""
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE prompts (key TEXT PRIMARY KEY, model TEXT NOT NULL, messages TEXT NOT NULL, "
        "params TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, created REAL NOT NULL)"
    )
    old = request_key("smollm2", MSG, PARAMS)
    con.execute("INSERT INTO prompts VALUES (?, 'smollm2', '[]', '{}', 7, 0)", [old])
    con.commit()
    con.close()
    cache = SampleCache(path)
    assert cache.identity_of("smollm2") == "smollm2"
    assert cache.prompt_tokens(request_key(cache.identity_of("smollm2"), MSG, PARAMS)) == 7


def test_a_deployment_entry_lists_replicas_or_one_url():
    one = Endpoint.model_validate({"base_url": "http://a:8000/v1", "params": 7e9})
    assert one.base_urls == ["http://a:8000/v1"]
    many = Endpoint.model_validate(
        {"base_urls": ["http://a:8000/v1", "http://b:8000/v1"], "params": 7e9, "revision": "r"}
    )
    assert many.base_url == "http://a:8000/v1" and len(many.base_urls) == 2
    assert Endpoint.model_validate(many.model_dump()) == many  # a dump reads back


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"base_url": "http://a/v1", "base_urls": ["http://b/v1"]}, "not both"),
        ({"base_urls": []}, "non-empty list"),
        ({"base_urls": ["http://a/v1", "http://a/v1"]}, "lists a URL twice"),
        ({"base_urls": ["embedded", "http://a/v1"]}, "embedded server cannot be one of several"),
    ],
)
def test_a_bad_replica_list_is_one_clear_error(tmp_path, entry, message):
    path = tmp_path / "dep.yaml"
    path.write_text(yaml.safe_dump({"models": {"m": {**entry, "params": 1e9}}}))
    with pytest.raises(InputError, match=message):
        Deployment.load(path)
