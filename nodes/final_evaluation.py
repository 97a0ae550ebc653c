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
    task = common.get_task(state["task"])
    archive = Archive.from_state(state)
    best = archive.best()
    test: dict[str, Any] | None = None
    if best is not None and has_split(task.data, "test"):
        [result] = registry.run_batch(task, [best.config], "test")
        test = Trial.from_result(
            result,
            task,
            trial_id=archive.next_id,
            iteration=int(state.get("iteration") or 0),
            proposer=settings.proposer,
            phase="test",
            rationale=f"best training trial {best.trial_id} on the test split",
        ).dump()
    thread = thread_of(get_config())  # a typed node takes the runtime or the config, not both
    done = {**state, "test_result": test}
    paths = write_report(
        done, Path(settings.report_dir).expanduser() / thread, thread_id=thread, task=task
    )
    return {"test_result": test, "report": paths}
