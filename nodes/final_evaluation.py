"""The end of a search: the best configuration runs once on the test split; the report is written.

The test split is touched only here, so the search never sees it. A train-only task
(`data.test_size: 0`) has none: nothing runs here, and the report says "no test split".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.runtime import Runtime

from agenttts import frontier
from agenttts.archive import Archive, Trial
from agenttts.environment import registry
from agenttts.environment.splits import has_split
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.report import write_report


def thread_of(config: RunnableConfig | None) -> str:
    return str(((config or {}).get("configurable") or {}).get("thread_id") or "run")


def final_evaluation(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = common.settings(state, runtime)
    task = common.search_task(state, settings)
    archive = Archive.from_state(state)
    budgets = common.budgets(state, settings)
    # each budget's best (one budget: the best), each configuration run once
    bests = frontier.bests(archive, budgets)
    chosen = {t.config.key(): t for t in bests.values() if t is not None}
    tests: dict[str, dict[str, Any]] = {}
    if chosen and has_split(task.data, "test"):
        results = registry.run_batch(task, [t.config for t in chosen.values()], "test")
        for i, (key, best, result) in enumerate(zip(chosen, chosen.values(), results, strict=True)):
            tests[key] = Trial.from_result(
                result,
                task,
                trial_id=archive.next_id + i,
                iteration=int(state.get("iteration") or 0),
                proposer=settings.proposer,
                phase="test",
                rationale=f"best training trial {best.trial_id} on the test split",
            ).dump()
    widest = bests[max(budgets)]
    test = tests.get(widest.config.key()) if widest is not None else None
    update: dict[str, Any] = {"test_result": test}
    if len(budgets) > 1:
        update["frontier_tests"] = {
            frontier.label(b): tests[t.config.key()]
            for b, t in bests.items()
            if t is not None and t.config.key() in tests
        }
    thread = thread_of(get_config())  # a typed node takes the runtime or the config, not both
    done = {**state, **update}
    paths = write_report(
        done, Path(settings.report_dir).expanduser() / thread, thread_id=thread, task=task
    )
    return {**update, "report": paths}
