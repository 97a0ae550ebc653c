"""The README's examples (`examples/`) on the REAL embedded server: each kind runs a trial, and the
LangGraph graph (changed only in its model objects) is searched end to end with the `insight`
proposer; an identical re-run of that search makes no call at all."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agenttts.environment.executor import Executor, HasCallStats, TrialResult
from agenttts.environment.registry import make_executor
from agenttts.environment.space import Config
from agenttts.environment.task_loading import load_task

pytestmark = [pytest.mark.integration, pytest.mark.embedded]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AGENTTTS = str(Path(sys.executable).with_name("agenttts"))
CONFIG = Config.of({"select": ("smollm2", 2), "answer": ("smollm2", 1)})


def stats(ex: Executor) -> int:
    """Requests the executor sent to its endpoints (retries included)."""
    assert isinstance(ex, HasCallStats)
    return ex.call_stats().requests


def trial(example: str, cache: Path) -> tuple[TrialResult, int]:
    task = load_task(EXAMPLES / example / "task.yaml")

    async def go() -> tuple[TrialResult, int]:
        async with make_executor(task, cache=str(cache)) as ex:
            (result,) = await ex.run([CONFIG], "train")
            return result, stats(ex)

    return asyncio.run(go())


def test_each_kind_runs_a_trial(embedded_server: str, tmp_path: Path):
    cache = tmp_path / "samples.sqlite"
    python, calls = trial("python_function", cache)
    assert python.ok, python.error
    assert calls > 0 and python.details["items"] == 3
    assert 0.0 <= python.metrics["f1"] <= 1.0 and python.completion_tokens > 0
    # the graph's first stage sends the very prompts the function sends: all from the cache. (Its
    # second stage's prompts match only where both read the same ids: the function drops numbers
    # beyond the passages before voting, the graph after, so a sample naming "7" of 5 can differ.)
    graph, _ = trial("langgraph", cache)
    assert graph.ok, graph.error
    assert graph.stages["select"].calls == 0 and graph.details["items"] == 3
    assert 0.0 <= graph.metrics["f1"] <= 1.0
    chain, _ = trial("chain", cache)
    assert chain.ok, chain.error
    assert chain.stages["select"].calls == 0  # its first stage's prompt is the same, too


def search(thread: str, cwd: Path) -> dict:
    task = str(EXAMPLES / "langgraph" / "task.yaml")
    out = subprocess.run(
        [AGENTTTS, "search", task, "--proposer", "insight", "--thread", thread,
         "--db", "runs.sqlite", "--batch-size", "2", "--max-iterations", "1",
         "--report-dir", "reports"],
        capture_output=True, text=True, cwd=cwd, timeout=1800,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    shown = subprocess.run(
        [AGENTTTS, "show", thread, "--db", "runs.sqlite", "--json"],
        capture_output=True, text=True, cwd=cwd, check=True,
    )  # fmt: skip
    return json.loads(shown.stdout)


def test_the_langgraph_example_is_searched_and_a_rerun_calls_nothing(
    embedded_server: str, tmp_path: Path
):
    first = search("first", tmp_path)  # the cache: .agenttts/cache/ under tmp_path
    ran = [t for t in first["archive"] if t["status"] == "ok"]
    assert len(ran) >= 3 and sum(t["calls"] for t in ran) > 0
    assert first["test_result"]["metrics"]["f1"] >= 0.0

    again = search("again", tmp_path)  # a new thread: the same proposals, every sample cached
    assert [t["config"] for t in again["archive"]] == [t["config"] for t in first["archive"]]
    assert sum(t["calls"] for t in again["archive"]) == 0
    assert again["test_result"]["calls"] == 0
    assert again["test_result"]["metrics"] == first["test_result"]["metrics"]
