"""The bundled 2Wiki task on the REAL embedded server (vLLM CPU, SmolLM2): one trial, the cache
making an identical re-run call nothing, and a larger S calling only for the missing samples."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agenttts.environment.live.cache import SampleCache
from agenttts.environment.live.python_pipeline import LiveExecutor
from agenttts.environment.space import Config
from agenttts.environment.task_loading import load_task

pytestmark = [pytest.mark.integration, pytest.mark.embedded]

ITEMS = 3


def small_task():
    task = load_task("tasks/2wiki.yaml" if Path("tasks/2wiki.yaml").exists() else "2wiki")
    task.data.train_size = ITEMS
    return task


def run(cache: Path, config: Config, **extra):
    ex = LiveExecutor(small_task(), cache=str(cache), **extra)

    async def go():
        async with ex:
            (result,) = await ex.run([config], "train")
            return result, ex.call_stats().requests

    return asyncio.run(go())


def test_trial_cache_and_missing_samples_only(embedded_server: str, tmp_path: Path):
    cache = tmp_path / "samples.sqlite"
    base = Config.of({"retrieval": ("smollm2", 2), "qa": ("smollm2", 2)})

    first, calls = run(cache, base)
    assert first.ok, first.error
    assert first.source == "live"
    # one n=2 request per item and stage (n is supported by vLLM)
    assert first.stages["retrieval"].calls == ITEMS and first.stages["qa"].calls == ITEMS
    assert calls == first.calls == 2 * ITEMS
    assert first.stages["qa"].completion_tokens > 0 and first.stages["retrieval"].prompt_tokens > 0
    assert first.measured_cost is not None and first.nominal_cost == 0.0  # tiny model: floored
    for name in ("em", "f1", "retrieval_precision", "retrieval_recall", "retrieval_f1"):
        assert 0.0 <= first.metrics[name] <= 1.0
    assert SampleCache(cache).stats()["samples"] == 2 * ITEMS * 2

    again, calls = run(cache, base)
    assert calls == 0 and again.calls == 0 and again.source == "cache"
    assert again.metrics == first.metrics
    assert again.stages["qa"].cached_samples == 2 * ITEMS
    # measured tokens are the same whether they came from the endpoint or the cache
    assert again.prompt_tokens == first.prompt_tokens
    assert again.completion_tokens == first.completion_tokens

    more = Config.of({"retrieval": ("smollm2", 2), "qa": ("smollm2", 5)})
    bigger, calls = run(cache, more)
    assert bigger.ok, bigger.error
    assert bigger.stages["retrieval"].calls == 0  # same retrieval samples: all cached
    assert bigger.stages["qa"].calls == ITEMS  # one request per item, for samples 2..4 only
    assert bigger.stages["qa"].cached_samples == 2 * ITEMS
    assert calls == ITEMS
    assert SampleCache(cache).stats()["samples"] == 2 * ITEMS * 2 + 3 * ITEMS

    replay, calls = run(cache, more, cache_only=True)
    assert calls == 0 and replay.metrics == bigger.metrics


def test_non_llm_retrievers_run_offline(embedded_server: str, tmp_path: Path):
    for retriever in ("bm25", "minilm"):
        result, _ = run(
            tmp_path / "c.sqlite", Config.of({"retrieval": (retriever, 1), "qa": ("smollm2", 1)})
        )
        assert result.ok, result.error
        assert result.stages["retrieval"].calls == 0
        assert result.stages["retrieval"].measured_cost == pytest.approx(
            small_task().stage("retrieval").model(retriever).fixed_cost
        )
        assert result.metrics["retrieval_recall"] > 0  # 3 of ~100 passages: chance is ~0.03
