"""The paper's other task kinds, bundled, each running one trial on the REAL embedded server (vLLM
CPU, SmolLM2): knowledge-graph QA (select triples -> answer) and MBPP code generation, whose pass
rate comes from executing every assert in the sandbox. An identical re-run is answered by the
sample cache with no call. (2Wiki retrieval -> QA: test_live_embedded.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agenttts.environment.executor import TrialResult
from agenttts.environment.live.python_pipeline import PythonExecutor
from agenttts.environment.space import Config
from agenttts.environment.task_loading import load_task
from agenttts.tasks.pipelines import mbpp

pytestmark = [pytest.mark.integration, pytest.mark.embedded]

TASKS = Path(__file__).resolve().parents[2] / "tasks"
ITEMS = 3


def trial(name: str, config: Config, cache: Path) -> tuple[TrialResult, int]:
    task = load_task(TASKS / name)
    task.data.train_size = ITEMS

    async def go() -> tuple[TrialResult, int]:
        async with PythonExecutor(task, cache=str(cache)) as executor:
            (result,) = await executor.run([config], "train")
            return result, executor.call_stats().requests

    return asyncio.run(go())


def check_one_trial_then_cached(name: str, config: Config, cache: Path) -> TrialResult:
    first, calls = trial(name, config, cache)
    assert first.ok, first.error
    assert first.source == "live" and first.details["items"] == ITEMS
    assert "failed_items" not in first.details, first.details
    for stage in config.root:
        assert first.stages[stage].calls == ITEMS  # one request (n = S) per item and stage
        assert first.stages[stage].completion_tokens > 0
    assert calls == first.calls == len(config.root) * ITEMS
    assert all(0.0 <= v <= 1.0 for v in first.metrics.values())
    tokens = f"{first.prompt_tokens}+{first.completion_tokens}"
    print(f"\n{name} {dict(config.root)}: {first.metrics}, tokens {tokens}")

    again, calls = trial(name, config, cache)
    assert calls == 0 and again.source == "cache" and again.metrics == first.metrics
    return first


def test_kgqa_one_trial(embedded_server: str, tmp_path: Path):
    config = Config.of({"select": ("smollm2", 2), "answer": ("smollm2", 2)})
    result = check_one_trial_then_cached("kgqa.yaml", config, tmp_path / "samples.sqlite")
    assert set(result.metrics) == {
        "contains",
        "em",
        "f1",
        "triple_precision",
        "triple_recall",
        "triple_f1",
    }


def test_mbpp_one_trial_pass_rate_from_executed_asserts(embedded_server: str, tmp_path: Path):
    config = Config.of({"code": ("smollm2", 2)})
    before = mbpp.execute.cache_info()
    result = check_one_trial_then_cached("mbpp.yaml", config, tmp_path / "samples.sqlite")
    executed = mbpp.execute.cache_info().misses - before.misses
    # each item: its S programs against the visible assert, the chosen one against all asserts
    assert executed >= ITEMS
    assert set(result.metrics) == {"pass@tests", "asserts"}
    assert result.metrics["pass@tests"] <= result.metrics["asserts"]
