"""Replicas of one served model, and the model identity the sample cache keys on.

Real local servers (`tests/fixtures/live/openai_server.py`): in this process where only their
answers matter, in their own processes where a test kills one -9 in the middle of a trial. Each
process logs every answer it sent, so a test can count the answers per sample index (the stage
draws sample i with seed 100 + i, one request each).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from agenttts.environment.deployment import Deployment
from agenttts.environment.live.cache import SampleCache
from agenttts.environment.live.client import Endpoints, RetryPolicy
from agenttts.environment.task import Task
from agenttts.errors import ResumableStop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from live_task import cfg, executor, make_task, run
from openai_server import FaultProcess, FaultServer

pytestmark = pytest.mark.integration

SEED = 100
RETRY = {"max_attempts": 2, "timeout_s": 5.0, "replica_backoff_s": 60.0}


def replica_task(tmp_path: Path, urls: list[str], items: int, **entry: object) -> Task:
    """QA by model `ok` on the replicas `urls`, one request per sample (seeded)."""
    deployment = tmp_path / "dep.yaml"
    deployment.write_text(
        yaml.safe_dump(
            {"models": {"ok": {"base_urls": urls, "params": 1e9, "max_concurrency": 2, **entry}}}
        )
    )
    task = make_task(urls[0], ["ok"])  # as resolved from the deployment: its first URL
    task.stage("qa").settings["seed"] = SEED
    task.deployment = str(deployment)
    task.data.train_size = items
    return task


def per_sample(*servers: FaultProcess) -> Counter[tuple[str, int]]:
    """Answers sent, by (prompt, sample index), over every server."""
    return Counter((a["prompt"], a["seed"] - SEED) for s in servers for a in s.answered())


def when(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Thread:
    """Run `then` once `condition` holds (polled every 10 ms): a kill in the middle of a trial."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_requests_go_to_the_replica_with_fewest_in_flight():
    """Wave 1 splits 2/2; while the slow replica still holds its 2, wave 2 goes 3:1 to the fast
    one (round robin would split 2/2 again)."""
    with FaultServer(["ok"], delay=1.5) as slow, FaultServer(["ok"], delay=0.05) as fast:
        deployment = Deployment.model_validate(
            {"models": {"ok": {"base_urls": [slow.url, fast.url], "params": 1e9}}}
        )
        msgs = [{"role": "user", "content": "Q?"}]

        async def go() -> dict[str, int]:
            endpoints = Endpoints(deployment, RetryPolicy())
            client = endpoints.client("ok")
            try:
                first = [asyncio.create_task(client.chat("ok", msgs)) for _ in range(4)]
                while sum(t.done() for t in first) < 2:  # the fast replica is done, the slow busy
                    await asyncio.sleep(0.01)
                second = [asyncio.create_task(client.chat("ok", msgs)) for _ in range(4)]
                await asyncio.gather(*first, *second)
                return {u: s.requests for u, s in client.replica_stats().items()}
            finally:
                await endpoints.aclose()

        stats = asyncio.run(go())
    assert slow.counts["ok"] == 3 and fast.counts["ok"] == 5
    assert stats == {slow.url: 3, fast.url: 5}


def test_a_replica_killed_mid_trial_the_survivors_finish_it_drawing_nothing_twice(tmp_path):
    with (
        FaultProcess(tmp_path / "a.log", delay=0.1) as a,
        FaultProcess(tmp_path / "b.log", delay=0.1) as b,
        FaultProcess(tmp_path / "c.log", delay=0.1) as c,
    ):
        task = replica_task(tmp_path, [a.url, b.url, c.url], items=6)
        ex = executor(task, tmp_path / "c.sqlite", retry=RETRY)
        killer = when(lambda: len(per_sample(a, b, c)) >= 5, b.kill)
        (res,) = run(ex, [cfg("ok", 4)])
        killer.join()
        answers = per_sample(a, b, c)
    assert res.ok, res.error
    assert b.proc.returncode is not None and 0 < len(b.answered()) < 8  # killed mid-trial
    # every sample of the 6 prompts answered exactly once, all of them stored
    assert len(answers) == 6 * 4 and set(answers.values()) == {1}
    assert SampleCache(tmp_path / "c.sqlite").stats()["samples"] == 6 * 4
    stats = {
        url: s for cl in ex.sampler.endpoints.all_clients for url, s in cl.replica_stats().items()
    }
    assert stats[b.url].taken_out == 1 and stats[a.url].taken_out == stats[c.url].taken_out == 0
    assert res.calls >= 24  # the requests lost with the dead replica are counted too


def test_all_replicas_down_stops_resumably_and_the_resume_draws_nothing_twice(tmp_path):
    a = FaultProcess(tmp_path / "a.log", delay=0.1)
    b = FaultProcess(tmp_path / "b.log", delay=0.1)
    task = replica_task(tmp_path, [a.url, b.url], items=6)
    cache = tmp_path / "c.sqlite"

    def kill_both() -> None:
        a.kill()
        b.kill()

    killer = when(lambda: len(per_sample(a, b)) >= 6, kill_both)
    with pytest.raises(ResumableStop, match="model 'ok' is not answering on all 2 replicas"):
        run(executor(task, cache, retry=RETRY), [cfg("ok", 4)])
    killer.join()
    drawn = per_sample(a, b)
    assert 6 <= len(drawn) < 24 and set(drawn.values()) == {1}
    assert SampleCache(cache).stats()["samples"] == len(drawn)  # every answer is in the cache

    # the servers come back on the same ports: the same trial asks only for what is missing
    with (
        FaultProcess(tmp_path / "a2.log", delay=0.1, port=a.port) as a2,
        FaultProcess(tmp_path / "b2.log", delay=0.1, port=b.port) as b2,
    ):
        (res,) = run(executor(task, cache, retry=RETRY), [cfg("ok", 4)])
        again = per_sample(a2, b2)
    assert res.ok, res.error
    assert len(again) == 24 - len(drawn) and not set(again) & set(drawn)
    assert res.stages["qa"].cached_samples == len(drawn)


def test_the_cache_follows_the_model_not_the_name_or_the_url(tmp_path):
    """Two servers of one model share samples; a different model under the same name does not,
    unless the deployment declares one `revision` for both."""
    cache = tmp_path / "c.sqlite"
    with (
        FaultServer(["ok"], root="/models/m1") as one,
        FaultServer(["ok"], root="/models/m1") as twin,
        FaultServer(["ok"], root="/models/m2") as other,
    ):

        def trial(urls: list[str], **entry: object):
            ex = executor(replica_task(tmp_path, urls, items=2, **entry), cache, retry=RETRY)
            (res,) = run(ex, [cfg("ok", 2)])
            assert res.ok, res.error
            return res.calls

        assert trial([one.url]) == 4
        assert trial([twin.url]) == 0  # the same model elsewhere: replayed
        assert trial([one.url, twin.url]) == 0  # replicas of it: replayed
        assert trial([other.url]) == 4  # another model under the same name: drawn anew
        with pytest.raises(ResumableStop, match="replicas of model 'ok' report different models"):
            trial([one.url, other.url])
        assert trial([one.url, other.url], revision="r1") == 4  # declared: one model
        assert trial([other.url], revision="r1") == 0
        assert sum(s.counts["ok"] for s in (one, twin, other)) == 12

    # no server at all: a cache-only replay under the declared revision calls nothing
    task = replica_task(tmp_path, ["http://127.0.0.1:9/v1"], items=2, revision="r1")
    (res,) = run(executor(task, cache, cache_only=True), [cfg("ok", 2)])
    assert res.ok and res.calls == 0
    # without the revision the cache holds three models named 'ok': replaying needs a choice
    task = replica_task(tmp_path, ["http://127.0.0.1:9/v1"], items=2)
    (res,) = run(executor(task, cache, cache_only=True), [cfg("ok", 2)])
    assert not res.ok and "declare the `revision:`" in str(res.error)


def test_the_embedded_server_names_the_weights_behind_its_served_name(embedded_server):
    """What the real vLLM reports is what the cache keys on; asking twice gives the same key."""

    async def identify() -> str:
        endpoints = Endpoints(None, RetryPolicy())
        try:
            return await endpoints.client("smollm2", embedded_server).identify()
        finally:
            await endpoints.aclose()

    first = asyncio.run(identify())
    assert '"id":"smollm2"' in first and '"owned_by":"vllm"' in first and '"root":' in first
    assert asyncio.run(identify()) == first


def test_servers_that_report_only_a_name_share_nothing_unless_declared(tmp_path, caplog):
    """Two servers whose `/models` gives only `id` (no `root`) answer differently under one name:
    the second replayed the first one's samples, with no warning. Now the key holds the server
    unless the deployment declares them replicas or gives a `revision`, and each run says once
    that the name is all the server tells, and how to share samples."""
    cache = tmp_path / "c.sqlite"
    with (
        FaultServer(["ok"], root=None) as one,
        FaultServer(["ok"], root=None) as other,
        caplog.at_level(logging.WARNING, logger="agenttts.live"),
    ):

        def trial(urls: list[str], **entry: object) -> int:
            ex = executor(replica_task(tmp_path, urls, items=2, **entry), cache, retry=RETRY)
            (res,) = run(ex, [cfg("ok", 2)])
            assert res.ok, res.error
            return res.calls

        assert trial([one.url]) == 4
        assert trial([one.url]) == 0  # the same server: replayed
        assert trial([other.url]) == 4  # another server under the same name: drawn anew
        assert trial([one.url, other.url]) == 4  # declared replicas: one model, its own key
        assert trial([other.url, one.url]) == 0
        assert trial([one.url], revision="r1") == 4  # declared weights: shared anywhere
        assert trial([other.url], revision="r1") == 0
    warned = [r.getMessage() for r in caplog.records if "reports only the name" in r.getMessage()]
    assert len(warned) == 3  # once per run of each server set (each test run is one process)
    assert "declare `revision:` for the model in the deployment file" in warned[0]
    # a cache-only replay finds the samples of the server it is pointed at
    task = replica_task(tmp_path, [other.url], items=2)
    (res,) = run(executor(task, cache, cache_only=True), [cfg("ok", 2)])
    assert res.ok and res.calls == 0
