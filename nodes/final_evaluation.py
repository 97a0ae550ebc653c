"""The end of a search: the best configuration runs once on the test split; the report is written.

The test split is touched only here, so the search never sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from agenttts.archive import Trial, best_trial
from agenttts.graph.context import Context
from agenttts.graph.state import State
from agenttts.nodes import common
from agenttts.report import write_report


def thread_of(config: RunnableConfig | None) -> str:
    return str(((config or {}).get("configurable") or {}).get("thread_id") or "run")


def final_evaluation(
    state: State, runtime: Runtime[Context], config: RunnableConfig
) -> dict[str, Any]:
    ctx = common.settings(state, runtime)
    task = common.get_task(state["task"])
    trials = common.archive(state)
    best = best_trial(trials)
    test: dict[str, Any] | None = None
    if best is not None:
        [result] = common.run_configs(task, [best.config], "test")
        test = Trial.from_result(
            result,
            task,
            trial_id=len(trials),
            iteration=int(state.get("iteration") or 0),
            proposer=ctx.proposer,
            phase="test",
            rationale=f"best training trial {best.trial_id} on the test split",
        ).dump()
    thread = thread_of(config)
    done = {**state, "test_result": test}
    paths = write_report(
        done, Path(ctx.report_dir).expanduser() / thread, thread_id=thread, task=task
    )
    return {"test_result": test, "report": paths}
