"""The durable sample cache: keys, indexes, insert-only writes, WAL sharing across processes."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agenttts.environment.live.cache import CLAIM_TTL_S, Sample, SampleCache, request_key

MSG = [{"role": "user", "content": "Q?"}]
PARAMS = {"temperature": 0.9, "top_p": 1.0, "max_tokens": 8}


def put(cache: SampleCache, key: str, idxs: range, text: str = "s", tokens: int = 3) -> None:
    cache.put(
        key,
        model="m",
        messages=MSG,
        params=PARAMS,
        prompt_tokens=11,
        samples=[Sample(i, f"{text}{i}", tokens) for i in idxs],
    )


def test_key_depends_on_model_messages_and_sampling_but_not_n():
    k = request_key("m", MSG, PARAMS)
    assert k == request_key("m", [dict(MSG[0])], dict(reversed(PARAMS.items())))
    assert k == request_key("m", MSG, {**PARAMS, "n": 7})
    assert k != request_key("m2", MSG, PARAMS)
    assert k != request_key("m", [{"role": "user", "content": "Q? "}], PARAMS)
    assert k != request_key("m", MSG, {**PARAMS, "temperature": 0.7})
    assert k != request_key("m", MSG, {**PARAMS, "seed": 1})


def test_indexes_missing_and_prompt_tokens(tmp_path: Path):
    cache = SampleCache(tmp_path / "c.sqlite")
    key = request_key("m", MSG, PARAMS)
    assert cache.missing(key, 3) == [0, 1, 2]
    assert cache.prompt_tokens(key) is None
    put(cache, key, range(0, 2))
    assert cache.missing(key, 4) == [2, 3]
    assert [s.text for s in cache.samples(key, 4)] == ["s0", "s1"]
    assert [s.index for s in cache.samples(key, 1)] == [0]
    assert cache.prompt_tokens(key) == 11


def test_insert_only_keeps_the_first_value_and_survives_reopen(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    cache = SampleCache(path)
    key = request_key("m", MSG, PARAMS)
    put(cache, key, range(3), text="first")
    put(cache, key, range(5), text="second", tokens=9)
    cache.close()
    again = SampleCache(path)
    got = again.samples(key, 5)
    assert [s.text for s in got] == ["first0", "first1", "first2", "second3", "second4"]
    assert [s.completion_tokens for s in got] == [3, 3, 3, 9, 9]
    assert again.stats() == {"prompts": 1, "samples": 5}
    mode = again.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode.lower() == "wal"


def _writer(path: str, worker: int) -> None:
    cache = SampleCache(path)
    for q in range(40):
        key = request_key("m", [{"role": "user", "content": f"{worker}-{q}"}], PARAMS)
        put(cache, key, range(5))
        # every process also writes the same shared prompt: first writer wins, no error
        put(cache, request_key("m", MSG, PARAMS), range(q % 5, q % 5 + 1), text=f"w{worker}-")
    cache.close()


def test_several_processes_share_one_file(tmp_path: Path):
    path = str(tmp_path / "shared.sqlite")
    SampleCache(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    stats = SampleCache(path).stats()
    assert stats == {"prompts": 3 * 40 + 1, "samples": 3 * 40 * 5 + 5}


# --- claims: each missing sample drawn by one process only -------------------------------------


def claim_row(cache: SampleCache, key: str, idx: int, *, host: str, pid: int, beat: float) -> None:
    with cache.db.conn:
        cache.db.execute(
            "INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?)", [key, idx, "other", host, pid, beat]
        )


def recorder(cache: SampleCache, key: str, asked: list[list[int]]):
    async def draw(indexes: list[int]) -> int:
        asked.append(list(indexes))
        cache.put(
            key, model="m", messages=[], params={}, prompt_tokens=1,
            samples=[Sample(i, f"s{i}", 1) for i in indexes],
        )  # fmt: skip
        return len(indexes)

    return draw


def test_fill_draws_the_unclaimed_waits_for_a_live_claim_and_takes_over_stale_ones(tmp_path):
    cache = SampleCache(tmp_path / "c.sqlite")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = time.time()
    claim_row(cache, "k", 0, host=cache.host, pid=dead.pid, beat=now)  # its process is gone
    claim_row(cache, "k", 1, host="elsewhere", pid=1, beat=now - CLAIM_TTL_S - 1)  # no heartbeat
    claim_row(cache, "k", 2, host=cache.host, pid=os.getpid(), beat=now)  # alive: wait for it
    asked: list[list[int]] = []

    async def other_process_finishes() -> None:
        await asyncio.sleep(0.3)
        cache.put("k", model="m", messages=[], params={}, prompt_tokens=1,
                  samples=[Sample(2, "theirs", 1)])  # fmt: skip
        with cache.db.conn:
            cache.db.execute("DELETE FROM claims WHERE owner = 'other'")

    async def go() -> tuple[int, int]:
        done, _ = await asyncio.gather(
            cache.fill("k", 4, recorder(cache, "k", asked)), other_process_finishes()
        )
        return done

    assert asyncio.run(go()) == (3, 3)
    assert asked == [[0, 1, 3]]  # index 2 was not drawn here: the live claim's holder stored it
    assert [s.text for s in cache.samples("k", 4)] == ["s0", "s1", "theirs", "s3"]
    assert cache.db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_a_failed_draw_drops_its_claims(tmp_path):
    cache = SampleCache(tmp_path / "c.sqlite")

    async def fail(indexes: list[int]) -> int:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        asyncio.run(cache.fill("k", 2, fail))
    assert cache.db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
