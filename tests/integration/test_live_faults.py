"""The live executor against a real local HTTP server that fails on purpose.

The server (`tests/fixtures/live/openai_server.py`: stdlib, 127.0.0.1, a free port) speaks the
OpenAI chat-completions wire format and misbehaves per model name: answers 500 or 429 (always, or
only the first k times), drops the connection without answering, stalls past the client's
timeout, rejects with 400, or answers garbage. The tests check that retries are bounded and
logged, an endpoint that answers nothing stops the run resumably (the circuit breaker) while one
failing request fails only its trial, and nothing already cached is lost.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agenttts.environment.budget import TokenUsage, measured_stage_budget
from agenttts.environment.live.python_pipeline import LiveExecutor
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task
from agenttts.errors import ResumableStop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from live_task import (
    MAX_ATTEMPTS,
    STALL_TIMEOUT,
    TASKS,
    cfg,
    executor,
    make_task,
    raw_task,
    run,
)
from openai_server import FaultServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.mark.parametrize(
    ("model", "expect"),
    [
        ("down500", "HTTP 500 after 3 attempt(s)"),
        ("limit429", "HTTP 429 after 3 attempt(s)"),
        ("drop", "connection error after 3 attempt(s)"),
        ("stall", "timeout after 3 attempt(s)"),
        ("garbage", "unreadable answer after 3 attempt(s)"),
    ],
)
def test_an_endpoint_answering_nothing_stops_the_run_resumably(server, tmp_path, model, expect):
    """The circuit breaker: no spending on against a dead endpoint, a resumable stop instead."""
    retry = STALL_TIMEOUT if model == "stall" else None
    ex = executor(make_task(server.url), tmp_path / "c.sqlite", retry=retry)
    with pytest.raises(
        ResumableStop, match=rf"model '{model}' is not answering.*{re.escape(expect)}"
    ):
        run(ex, [cfg("ok"), cfg(model), cfg(model, 3)])
    # the first prompt to fail for good opens the breaker; the others stop at their next attempt:
    # bounded by the attempts of the requests in flight, no retry storm
    assert MAX_ATTEMPTS <= server.counts[model] <= 4 * MAX_ATTEMPTS


def test_an_endpoint_that_goes_bad_mid_batch_stops_it(server, tmp_path):
    """It answered once, then nothing: down, although the batch had an answer from it."""
    ex = executor(make_task(server.url), tmp_path / "c.sqlite")
    with pytest.raises(ResumableStop, match="model 'sour500' is not answering"):
        run(ex, [cfg("sour500")])


def test_one_request_failing_while_others_are_answered_fails_only_its_trial(server, tmp_path):
    """`poison500` fails sample 1 of every prompt (odd seed) and answers sample 0 meanwhile."""
    task = make_task(server.url)
    task.stage("qa").settings["seed"] = 100
    ex = executor(task, tmp_path / "c.sqlite")
    bad, fine = run(ex, [cfg("poison500", 2), cfg("ok")])
    assert not bad.ok and "HTTP 500 after 3 attempt(s)" in str(bad.error)
    assert "2 of 2 items failed" in str(bad.error)  # each item's own request
    assert fine.ok, fine.error


def poisoned(tmp_path: Path, train_size: int) -> tuple[FaultServer, LiveExecutor, str]:
    """A server that chokes on the first training item's question (HTTP 500, always), and an
    executor of the fault task on the first `train_size` training items."""
    task = make_task("http://unused", ["ok"])
    task.data.train_size = train_size
    question = str(LiveExecutor(task).program.items("train")[0]["question"])
    srv = FaultServer(["ok"], poison=question)
    task = make_task(srv.url, ["ok"])
    task.data.train_size = train_size
    return srv, executor(task, tmp_path / "c.sqlite"), question


def test_a_prompt_the_server_chokes_on_fails_its_item_not_the_run(tmp_path):
    """The request of one item always gets HTTP 500 while /models and the other requests answer.
    It tripped the circuit breaker when it was the last request in flight (exit 3, nothing
    recorded, and every resume stopped the same way); now a probe (another prompt, one token)
    is answered, so the request fails only its item, and the trial stands on the others."""
    srv, ex, question = poisoned(tmp_path, 1)
    with srv:
        (alone,) = run(ex, [cfg("ok")])  # the only item: nothing else answers meanwhile
    assert not alone.ok and "1 of 1 items failed" in str(alone.error)
    assert "RequestFailed" in str(alone.error) and "HTTP 500 after 3 attempt(s)" in str(alone.error)
    probes = [b for b in srv.requests if question not in json.dumps(b["messages"])]
    assert len(probes) == 1 and probes[0]["messages"] == [
        {"role": "user", "content": "Reply with OK."}
    ]
    srv, ex, _ = poisoned(tmp_path, 3)
    with srv:
        (res,) = run(ex, [cfg("ok", 2)])
    assert res.ok, res.error
    assert res.details["failed_items"] == 1 and "HTTP 500" in res.details["first_item_error"]
    assert res.metrics["em"] < 1  # the failed item scores 0


def test_an_item_whose_code_catches_its_failed_request_still_fails(tmp_path):
    """The item's failed request is noted on the item: a pipeline that catches the error and
    answers anyway is not scored on samples it never got."""
    srv, ex, _ = poisoned(tmp_path, 2)
    pipeline = ex.program.predict

    async def predict(item: dict[str, Any], stages: Any) -> Any:
        try:
            return await pipeline(item, stages)
        except Exception:
            return {"answer": "Paris", "passages": []}  # an answer made up without samples

    with srv:
        ex.program.predict = predict  # type: ignore[method-assign]
        (res,) = run(ex, [cfg("ok", 1)])
    assert res.ok and res.details["failed_items"] == 1, res


def test_a_retry_wave_is_one_log_line(server, tmp_path, caplog):
    """Both items' first requests fail alike: one line names model, URL, cause and attempt."""
    ex = executor(make_task(server.url), tmp_path / "c.sqlite")
    with caplog.at_level(logging.WARNING, logger="agenttts.live"):
        (res,) = run(ex, [cfg("flaky500", 3)])
    assert res.ok, res.error
    lines = [r.getMessage() for r in caplog.records if r.name == "agenttts.live"]
    assert lines == [
        f"retry: model 'flaky500' at {server.url}: HTTP 500, attempt 1/{MAX_ATTEMPTS} failed; "
        f"retrying in {lines[0].rsplit(' ', 2)[1]} s"
    ]


def test_client_errors_are_not_retried(server, tmp_path):
    ex = executor(make_task(server.url), tmp_path / "c.sqlite")
    (bad,) = run(ex, [cfg("reject400")])
    assert not bad.ok and "HTTP 400 after 1 attempt(s)" in str(bad.error)
    assert server.counts["reject400"] == 2


def test_transient_500s_are_retried_to_success(server, tmp_path):
    ex = executor(make_task(server.url), tmp_path / "c.sqlite")
    (res,) = run(ex, [cfg("flaky500", 3)])
    assert res.ok, res.error
    assert server.counts["flaky500"] == 4  # 2 items + 2 failures retried
    assert res.calls == 4  # retried requests are counted as calls


def test_a_stopped_run_loses_nothing_already_cached(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    first = run(executor(make_task(server.url), cache), [cfg("ok", 4, "okB", 3)])[0]
    assert first.ok and first.calls == 4  # 2 items x (retrieval + qa)
    # same retrieval samples (cached), then a QA model that always fails: the breaker stops it
    with pytest.raises(ResumableStop):
        run(executor(make_task(server.url), cache), [cfg("down500", 2, "okB", 3)])
    assert server.counts["okB"] == 2  # retrieval came from the cache
    # everything from the first trial is still there: replaying it calls nothing
    ex = executor(make_task(server.url), cache)
    again = run(ex, [cfg("ok", 4, "okB", 3)])[0]
    assert again.ok and again.calls == 0 and ex.call_stats().requests == 0
    assert again.metrics == first.metrics
    assert again.stages["qa"].cached_samples == 8


def test_unreachable_endpoint_is_one_error_before_any_compute(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/v1"
    ex = executor(make_task(dead, ["ok"]), tmp_path / "c.sqlite")
    with pytest.raises(ResumableStop, match=r"unreachable.*nothing was run"):
        run(ex, [cfg("ok")])


def test_unknown_served_model_is_reported_before_any_compute(server, tmp_path):
    task = make_task(server.url, ["ok", "ghost"])
    ex = executor(task, tmp_path / "c.sqlite")
    with pytest.raises(ResumableStop, match="does not serve model 'ghost'"):
        run(ex, [cfg("ok"), cfg("ghost")])
    assert sum(server.counts.values()) == 0


def test_two_task_models_served_as_one_need_served_name_and_share_its_samples(server, tmp_path):
    """The usual first try on a laptop: two "models" of a task on one server. Without
    `served_name:` the check before any compute says what to write; with it both names run the
    server's model, whose samples the cache shares (keyed on the model served, not the name)."""
    import yaml

    from agenttts.environment.task_loading import parse_task

    def task_with(entry: dict[str, object]) -> Task:
        deployment = tmp_path / "deployment.yaml"
        models = {"small": {"params": 1e9, **entry}, "large": {"params": 7e10, **entry}}
        deployment.write_text(yaml.safe_dump({"models": models}))
        raw = raw_task(server.url, [])
        raw["stages"][1]["models"] = [{"name": "small"}, {"name": "large"}]
        raw["deployment"] = str(deployment)
        return parse_task(raw, source="faults", base_dir=TASKS)

    plain = task_with({"base_url": server.url})
    with pytest.raises(ResumableStop, match="does not serve model 'small'") as caught:
        run(executor(plain, tmp_path / "c.sqlite"), [cfg("small")])
    assert "served_name:" in str(caught.value)
    assert sum(server.counts.values()) == 0

    named = task_with({"base_url": server.url, "served_name": "ok"})
    small, large = run(executor(named, tmp_path / "c.sqlite"), [cfg("small"), cfg("large")])
    assert small.ok and large.ok, (small.error, large.error)
    assert server.counts["ok"] == 2  # one n=2 request per item, for both names together
    assert small.metrics == large.metrics  # the same samples: one model behind two names
    assert small.nominal_cost < large.nominal_cost  # priced by each name's own params


def test_cache_only_replays_with_zero_calls_and_names_a_missing_sample(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    run(executor(make_task(server.url), cache), [cfg("ok", 2)])
    before = sum(server.counts.values())
    ex = executor(make_task(server.url), cache, cache_only=True)
    hit, miss = run(ex, [cfg("ok", 2), cfg("ok", 3)])
    assert hit.ok and hit.calls == 0 and hit.source == "cache"
    assert not miss.ok and "cache-only: sample 2 (of 3) of model 'ok' at stage 'qa'" in str(
        miss.error
    )
    assert sum(server.counts.values()) == before


def test_without_n_support_each_missing_sample_is_one_request(server, tmp_path):
    deployment = tmp_path / "dep.yaml"
    deployment.write_text(
        f"models:\n  ok: {{base_url: {server.url}, params: 1e9, supports_n: false, "
        "max_concurrency: 1}\n"
    )
    task = make_task(server.url, ["ok"])
    task.deployment = str(deployment)
    ex = executor(task, tmp_path / "c.sqlite")
    (res,) = run(ex, [cfg("ok", 3)])
    assert res.ok and res.calls == 6 and server.counts["ok"] == 6
    assert ex.call_stats().max_in_flight == 1  # the deployment's max_concurrency held


def test_concurrency_limit_is_reached_and_not_exceeded(tmp_path):
    with FaultServer(["ok"], delay=0.2) as slow:
        deployment = tmp_path / "dep.yaml"
        deployment.write_text(
            f"models:\n  ok: {{base_url: {slow.url}, params: 1e9, max_concurrency: 2}}\n"
        )
        task = make_task(slow.url, ["ok"])
        task.deployment = str(deployment)
        task.data.train_size = 5
        ex = executor(task, tmp_path / "c.sqlite")
        (res,) = run(ex, [cfg("ok", 1)])
    assert res.ok, res.error
    assert ex.call_stats().max_in_flight == 2


def test_the_paper_task_runs_unchanged_on_given_endpoints(tmp_path):
    """tasks/paper-2wiki.yaml as shipped, with its deployment's URLs pointed at a live server."""
    import yaml

    paper = yaml.safe_load((TASKS / "paper-2wiki.yaml").read_text())
    deployment = yaml.safe_load((TASKS / paper["deployment"]).read_text())
    with FaultServer(list(deployment["models"])) as srv:
        for entry in deployment["models"].values():
            entry["base_url"] = srv.url
        (tmp_path / "dep.yaml").write_text(yaml.safe_dump(deployment))
        paper["deployment"] = "dep.yaml"
        paper["data"]["path"] = str(TASKS / paper["data"]["path"])
        paper["data"]["train_size"] = 2
        (tmp_path / "paper.yaml").write_text(yaml.safe_dump(paper))
        task = load_task(tmp_path / "paper.yaml")
        ex = LiveExecutor(task, cache=str(tmp_path / "c.sqlite"))
        config = Config.of(
            {"retrieval": ("qwen2.5-7b-instruct", 3), "qa": ("llama-3.1-8b-instruct", 2)}
        )
        (res,) = run(ex, [config])
    assert res.ok, res.error
    assert srv.counts == Counter({"qwen2.5-7b-instruct": 2, "llama-3.1-8b-instruct": 2})
    retrieval = next(b for b in srv.requests if b["model"] == "qwen2.5-7b-instruct")
    # no shortlist by default: the retriever sees every candidate; the paper's Nd caps generation
    assert "[100]" in retrieval["messages"][-1]["content"]
    assert (
        retrieval["max_completion_tokens" if "max_completion_tokens" in retrieval else "max_tokens"]
        == 128
    )
    assert retrieval["n"] == 3 and retrieval["temperature"] == 0.9
    assert res.stages["retrieval"].nominal_cost == pytest.approx(
        task.stage("retrieval").cost("qwen2.5-7b-instruct", 3)
    )
    assert res.measured_cost is not None and res.measured_cost > 0


def test_fuse_aggregator_calls_are_counted_in_the_stage_cost(server, tmp_path):
    task = make_task(server.url, ["ok"])
    task.stage("qa").aggregator = "fuse"
    task.stage("qa").model("ok").params = 70e9  # large enough that measured cost is not floored
    cache = tmp_path / "c.sqlite"
    (single,) = run(executor(task, cache), [cfg("ok", 1)])
    (fused,) = run(executor(task, cache), [cfg("ok", 3)])
    assert single.ok and fused.ok, fused.error
    # S=1 needs no fuser; S=3: per item one n=2 request (samples 1, 2) and one fuser call
    assert single.stages["qa"].calls == 2
    assert fused.stages["qa"].calls == 2 + 2
    fuse_bodies = [
        b for b in server.requests if "Candidate answers" in b["messages"][-1]["content"]
    ]
    assert len(fuse_bodies) == 2
    assert all(b["temperature"] == 0.0 and b["n"] == 1 for b in fuse_bodies)
    # the fuser's tokens are in the stage: 2 sample prompts + 2 fuser prompts, 50 tokens each
    assert fused.stages["qa"].prompt_tokens == 4 * 50
    plain = task.stage("qa").model("ok")
    assert plain.params is not None
    samples_only = measured_stage_budget(TokenUsage(2, 100, 24, 6, 2), plain.params, 3)
    measured = fused.stages["qa"].measured_cost
    assert measured is not None and samples_only is not None and measured > samples_only
