"""The live executor against a real local HTTP server that fails on purpose.

The server (stdlib, 127.0.0.1, a free port) speaks the OpenAI chat-completions wire format and
misbehaves per model name: answers 500 or 429 (always, or only the first k times), drops the
connection without answering, stalls past the client's timeout, or rejects with 400. The tests
check that retries are bounded, a failed trial is recorded with its error while the batch goes on,
and nothing already cached is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agenttts.environment.budget import TokenUsage, measured_stage_budget
from agenttts.environment.live.executor import EndpointUnreachable, LiveExecutor
from agenttts.environment.task import Config, Task, load_task, parse_task

pytestmark = pytest.mark.integration

TASKS = Path(__file__).resolve().parents[2] / "tasks"
MODELS = ["ok", "flaky500", "down500", "limit429", "drop", "stall", "reject400", "okB"]
MAX_ATTEMPTS = 3


class FaultServer:
    def __init__(self, models: list[str] = MODELS) -> None:
        self.models = list(models)
        self.counts: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)  # a client that timed out has gone

            def do_GET(self) -> None:
                data = [{"id": m, "object": "model"} for m in server.models]
                self._send(200, {"object": "list", "data": data})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model = body["model"]
                with server.lock:
                    server.bodies.append(body)
                    server.counts[model] += 1
                    seen = server.counts[model]
                if model == "down500" or (model == "flaky500" and seen <= 2):
                    return self._send(500, {"error": {"message": "boom"}})
                if model == "limit429":
                    return self._send(
                        429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}
                    )
                if model == "reject400":
                    return self._send(400, {"error": {"message": "bad request"}})
                if model == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if model == "stall":
                    time.sleep(2.0)
                user = body["messages"][-1]["content"]
                text = "1, 2" if "passage numbers" in user.lower() else "Answer: Paris"
                n = int(body.get("n") or 1)
                choices = [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                    for i in range(n)
                ]
                usage = {
                    "prompt_tokens": 50,
                    "completion_tokens": 4 * n,
                    "total_tokens": 50 + 4 * n,
                }
                return self._send(
                    200,
                    {"id": "x", "object": "chat.completion", "created": 0, "model": model,
                     "choices": choices, "usage": usage},
                )  # fmt: skip

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


def make_task(url: str, models: list[str] = MODELS) -> Task:
    raw = {
        "name": "faults",
        "budget": 1000,
        "stages": [
            {
                "name": "retrieval",
                "models": [
                    {"name": "bm25", "kind": "bm25", "fixed_cost": 0.01},
                    *({"name": m, "endpoint": url, "params": 1e9} for m in models),
                ],
                "prompt_tokens": 2048,
                "gen_tokens": 128,
                "max_samples": 8,
                "aggregator": "vote_ids",
                "settings": {"shortlist": 5, "max_tokens": 8},
            },
            {
                "name": "qa",
                "models": [{"name": m, "endpoint": url, "params": 1e9} for m in models],
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": 8,
                "aggregator": "vote",
                "settings": {"max_tokens": 8},
            },
        ],
        "metrics": ["em", "f1", "retrieval_f1"],
        "main_metric": "em",
        "data": {"path": "data/2wikimultihopqa/tts_test.json", "train_size": 2, "test_size": 1},
        "environment": {"kind": "live"},
    }
    return parse_task(raw, source="faults", base_dir=TASKS)


def executor(task: Task, cache: Path, **extra: Any) -> LiveExecutor:
    retry = {
        "max_attempts": MAX_ATTEMPTS,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
        "timeout_s": 0.5,
    }
    return LiveExecutor(task, cache=str(cache), retry=retry, **extra)


def cfg(qa: str, s: int = 2, retrieval: str = "bm25", rs: int = 1) -> Config:
    return Config.of({"retrieval": (retrieval, rs), "qa": (qa, s)})


def run(ex: LiveExecutor, configs: list[Config]):
    async def go():
        try:
            return await ex.run(configs, "train")
        finally:
            ex.peak = max((c.stats.max_in_flight for c in ex._clients.values()), default=0)
            await ex.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("model", "expect"),
    [
        ("down500", "HTTP 500 after 3 attempt(s)"),
        ("limit429", "HTTP 429 after 3 attempt(s)"),
        ("drop", "connection error after 3 attempt(s)"),
        ("stall", "timeout after 3 attempt(s)"),
    ],
)
def test_retryable_failures_are_bounded_and_the_batch_goes_on(server, tmp_path, model, expect):
    ex = executor(make_task(server.url), tmp_path / "c.sqlite")
    ok, bad = run(ex, [cfg("ok"), cfg(model)])
    assert ok.ok and ok.metrics["em"] == 0.0 and ok.calls == 2  # one n=2 request per item
    assert not bad.ok and expect in bad.error
    # each of the 2 items' prompts is tried at most MAX_ATTEMPTS times (the second may be cut
    # short once the first has failed the trial): bounded, no retry storm
    assert MAX_ATTEMPTS <= server.counts[model] <= 2 * MAX_ATTEMPTS
    assert bad.nominal_cost > 0


def test_client_errors_are_not_retried(server, tmp_path):
    ex = executor(make_task(server.url), tmp_path / "c.sqlite")
    (bad,) = run(ex, [cfg("reject400")])
    assert not bad.ok and "HTTP 400 after 1 attempt(s)" in bad.error
    assert server.counts["reject400"] == 2


def test_transient_500s_are_retried_to_success(server, tmp_path):
    ex = executor(make_task(server.url), tmp_path / "c.sqlite")
    (res,) = run(ex, [cfg("flaky500", 3)])
    assert res.ok, res.error
    assert server.counts["flaky500"] == 4  # 2 items + 2 failures retried
    assert res.calls == 4  # retried requests are counted as calls


def test_a_failed_trial_loses_nothing_already_cached(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    first = run(executor(make_task(server.url), cache), [cfg("ok", 4, "okB", 3)])[0]
    assert first.ok and first.calls == 4  # 2 items x (retrieval + qa)
    # same retrieval samples (cached), then a QA model that always fails
    failed = run(executor(make_task(server.url), cache), [cfg("down500", 2, "okB", 3)])[0]
    assert not failed.ok
    assert server.counts["okB"] == 2  # retrieval came from the cache
    # everything from the first trial is still there: replaying it calls nothing
    ex = executor(make_task(server.url), cache)
    again = run(ex, [cfg("ok", 4, "okB", 3)])[0]
    assert again.ok and again.calls == 0 and ex.calls == 0
    assert again.metrics == first.metrics
    assert again.stages["qa"].cached_samples == 8


def test_unreachable_endpoint_is_one_error_before_any_compute(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/v1"
    ex = executor(make_task(dead, ["ok"]), tmp_path / "c.sqlite")
    with pytest.raises(EndpointUnreachable, match=r"unreachable.*nothing was run"):
        run(ex, [cfg("ok")])


def test_unknown_served_model_is_reported_before_any_compute(server, tmp_path):
    task = make_task(server.url, ["ok", "ghost"])
    ex = executor(task, tmp_path / "c.sqlite")
    with pytest.raises(EndpointUnreachable, match="does not serve model 'ghost'"):
        run(ex, [cfg("ok"), cfg("ghost")])
    assert sum(server.counts.values()) == 0


def test_cache_only_replays_with_zero_calls_and_names_a_missing_sample(server, tmp_path):
    cache = tmp_path / "c.sqlite"
    run(executor(make_task(server.url), cache), [cfg("ok", 2)])
    before = sum(server.counts.values())
    ex = executor(make_task(server.url), cache, cache_only=True)
    hit, miss = run(ex, [cfg("ok", 2), cfg("ok", 3)])
    assert hit.ok and hit.calls == 0 and hit.source == "cache"
    assert not miss.ok and "cache-only: sample 2 (of 3) of model 'ok' at stage 'qa'" in miss.error
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
    assert ex.peak == 1  # the deployment's max_concurrency held


def test_concurrency_limit_is_reached_and_not_exceeded(server, tmp_path):
    deployment = tmp_path / "dep.yaml"
    deployment.write_text(
        f"models:\n  stall: {{base_url: {server.url}, params: 1e9, max_concurrency: 2}}\n"
    )
    task = make_task(server.url, ["stall"])
    task.deployment = str(deployment)
    task.data.train_size = 5
    ex = executor(task, tmp_path / "c.sqlite")
    run(ex, [cfg("stall", 1)])
    assert ex.peak == 2


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
    retrieval = next(b for b in srv.bodies if b["model"] == "qwen2.5-7b-instruct")
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
    fuse_bodies = [b for b in server.bodies if "Candidate answers" in b["messages"][-1]["content"]]
    assert len(fuse_bodies) == 2
    assert all(b["temperature"] == 0.0 and b["n"] == 1 for b in fuse_bodies)
    # the fuser's tokens are in the stage: 2 sample prompts + 2 fuser prompts, 50 tokens each
    assert fused.stages["qa"].prompt_tokens == 4 * 50
    plain = task.stage("qa").model("ok")
    samples_only = measured_stage_budget(TokenUsage(2, 100, 24, 6, 2), plain.params, 3)
    assert fused.stages["qa"].measured_cost > samples_only
