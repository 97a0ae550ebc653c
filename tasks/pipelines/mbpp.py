"""Code generation with real execution (MBPP): S programs, the first that passes the problem's
visible assert wins, scored by executing every assert; optionally after a plan.

Items are MBPP rows (`tasks/data/mbpp/`): `prompt` (the problem), `test` (its assert lines),
`task_id`. The model sees the first assert (it names the function and its arguments); the
program is picked with it and scored on all of them. Stages:

1. plan (optional: a task without a `plan` stage codes at once): a short plan from the problem
   and the first assert (the stage's aggregator: `first`).
2. code: S programs from the problem, the first assert and the plan. Each runs against that
   assert in the sandbox; the stage's aggregator (`first`, or `vote`) chooses among the programs
   that pass it, or among all of them when none does.

`score` runs the chosen program against every assert: `pass@tests` is 1 when all pass, `asserts`
is the share that pass. Generated code only ever runs through `agenttts.pipeline.run_tests`: a
separate process with a timeout and a memory limit, never the search process. A stage's
`settings.prompt` replaces its prompt file (placeholders: `{problem}`, `{test}`, and `{plan}`
for code: "Plan:" and the plan, or nothing).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.live.loading import load_items
from agenttts.environment.live.prompts import PromptTemplate
from agenttts.environment.task import Problem, Task
from agenttts.errors import InputError
from agenttts.pipeline import StageHandle, Stages, TestRun, run_tests, strip_code_fence
from agenttts.tasks.pipelines.stage_config import (
    metric_problems,
    stage_problems,
    stage_prompt,
    stage_settings,
)

METRICS = ("pass@tests", "asserts")
PLAN = "plan"  # the optional stage (a name, not a literal `stages[...]`: see `check`)
PROMPTS = {PLAN: "mbpp-plan.txt", "code": "mbpp-code.txt"}
TIMEOUT_S = 10.0  # one program against its asserts; MBPP's reference solutions take milliseconds


class Settings(BaseModel):
    """The pipeline's own key in a stage's `settings:` (sampling keys are agenttts')."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, description="prompt file, relative to the task file")


def prompt(stage: StageHandle) -> PromptTemplate:
    return stage_prompt(stage, stage_settings(stage.stage, Settings), PROMPTS[stage.name])


@functools.lru_cache(maxsize=16384)
def execute(code: str, tests: tuple[str, ...]) -> TestRun:
    """One sandboxed run, remembered: a trial run again re-executes nothing."""
    return run_tests(code, list(tests), timeout_s=TIMEOUT_S)


async def pipeline(item: dict[str, Any], stages: Stages) -> str:
    problem, test = str(item["prompt"]), str(item["test"][0])
    plan = ""
    if PLAN in stages:
        plan_stage = stages[PLAN]
        samples = await plan_stage.sample(prompt(plan_stage).messages(problem=problem, test=test))
        written = await plan_stage.aggregate([s.text.strip() for s in samples], question=problem)
        plan = f"\nPlan:\n{written}\n" if written else ""

    code_stage = stages["code"]
    messages = prompt(code_stage).messages(problem=problem, test=test, plan=plan)
    programs = [strip_code_fence(s.text) for s in await code_stage.sample(messages)]
    runs = await asyncio.gather(*(asyncio.to_thread(execute, p, (test,)) for p in programs))
    passing = [p for p, run in zip(programs, runs, strict=True) if run.all_passed]
    return str(await code_stage.aggregate(passing or programs) or "")


async def score(prediction: str, item: dict[str, Any]) -> dict[str, float]:
    tests = tuple(str(t) for t in item["test"])
    run = await asyncio.to_thread(execute, strip_code_fence(str(prediction or "")), tests)
    return {
        "pass@tests": float(run.all_passed),
        "asserts": run.passed / run.total if run.total else 0.0,
    }


def check(task: Task) -> list[Problem]:
    """What `task validate` adds for this pipeline, before anything is spent."""
    names = task.stage_names
    if names not in (["code"], [PLAN, "code"]):
        return [
            Problem(
                field="stages",
                message=f"mbpp runs the stages [code] or [{PLAN}, code], in that order; "
                f"the task declares {names}",
            )
        ]
    problems = [
        *stage_problems(
            task,
            PLAN,
            settings=Settings,
            aggregators={"first"},
            default_prompt=PROMPTS[PLAN],
            placeholders={"problem", "test"},
        ),
        *stage_problems(
            task,
            "code",
            settings=Settings,
            aggregators={"first", "vote"},
            default_prompt=PROMPTS["code"],
            placeholders={"problem", "test", "plan"},
        ),
        *metric_problems(task, METRICS, "mbpp"),
    ]
    try:
        items = load_items(task.resolve(task.data.path or ""))
    except InputError:
        return problems  # reported by the executor's own check
    bad = [
        i
        for i, item in enumerate(items)
        if not isinstance(item.get("prompt"), str) or not item.get("test")
    ]
    if bad:
        problems.append(
            Problem(
                field="data.path",
                message=f"{len(bad)} item(s) lack `prompt` or a non-empty `test` list "
                f"(first: item {bad[0]})",
            )
        )
    return problems
