"""The bundled 2Wiki retrieval -> QA task through the `kind: python` machinery gives the same
metrics and token counts as the special-case executor it replaced, on the same sample cache.
The task is the bundled `tasks/2wiki.yaml` as shipped (`kind: python`), on its first 3 items.

The old executor's numbers were recorded replaying `samples.sqlite` (see the fixture's README);
here the new path replays it with zero calls and must match them exactly.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from agenttts.environment.executor import Executor, HasCallStats, TrialResult
from agenttts.environment.registry import make_executor
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.environment.task_loading import parse_task

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "live" / "2wiki_golden"


def stats(ex: Executor) -> int:
    """Requests the executor sent to its endpoints (retries included)."""
    assert isinstance(ex, HasCallStats)
    return ex.call_stats().requests


async def replay(task: Task, configs: list[Config], cache: Path) -> tuple[list[TrialResult], int]:
    async with make_executor(task, cache=str(cache), cache_only=True) as ex:
        return await ex.run(configs, "train"), stats(ex)


def test_same_metrics_and_tokens_as_the_old_executor(tmp_path):
    cache = tmp_path / "samples.sqlite"
    shutil.copy(GOLDEN / "samples.sqlite", cache)
    old = json.loads((GOLDEN / "old_executor.json").read_text())
    raw = yaml.safe_load((ROOT / "tasks" / "2wiki.yaml").read_text())
    raw["data"]["train_size"] = 3
    fused = copy.deepcopy(raw)
    fused["stages"][1]["aggregator"] = "fuse"
    compared = 0
    for variant, spec in (("vote", raw), ("fuse", fused)):
        task = parse_task(spec, source="2wiki", base_dir=ROOT / "tasks")
        expected = [o for o in old if o["variant"] == variant]

        configs = [Config.model_validate(o["config"]) for o in expected]
        results, calls = asyncio.run(replay(task, configs, cache))
        assert calls == 0
        for want, got in zip(expected, results, strict=True):
            assert got.ok, got.error
            assert got.metrics == want["metrics"]
            assert got.prompt_tokens == want["prompt_tokens"]
            assert got.completion_tokens == want["completion_tokens"]
            assert got.nominal_cost == want["nominal_cost"]
            assert got.measured_cost == want["measured_cost"]
            assert {k: v.model_dump() for k, v in got.stages.items()} == want["stages"]
            compared += 1
    assert compared == 3
