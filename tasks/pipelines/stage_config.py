"""A bundled pipeline's stage configuration: read when it runs, checked by `task validate`.

A bundled pipeline reads a few keys of its own from a stage's `settings:` (a pydantic model) and a
prompt file with known placeholders (`prompt:`, default: one in `tasks/prompts/`), and works only
with some aggregators; `stage_problems` reports every mismatch at once, with the field to fix,
before anything is spent.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from agenttts.environment.live.prompts import PromptTemplate, resolve_prompt
from agenttts.environment.live.stages import StageHandle, split_settings
from agenttts.environment.task import Problem, Stage, Task

S = TypeVar("S", bound=BaseModel)


def stage_settings(stage: Stage, model: type[S]) -> S:
    """The pipeline's own keys of a stage's `settings:` (the sampling keys are agenttts')."""
    return model.model_validate(split_settings(stage)[1])


@functools.lru_cache(maxsize=32)
def _template(path: Path) -> PromptTemplate:
    return PromptTemplate.load(path)


def stage_prompt(handle: StageHandle, settings: BaseModel, default: str) -> PromptTemplate:
    """The stage's prompt: its `settings.prompt` (relative to the task file), else `default`
    (a file name in `tasks/prompts/`)."""
    chosen = getattr(settings, "prompt", None) or default
    return _template(resolve_prompt(chosen, handle.run.task.base_dir))


def stage_problems(
    task: Task,
    name: str,
    *,
    settings: type[BaseModel],
    aggregators: Collection[str],
    default_prompt: str,
    placeholders: Collection[str],
    non_llm: Collection[str] | None = (),
) -> list[Problem]:
    """Problems with stage `name` (none if the task lacks it: the pipeline check reports that).
    `non_llm`: the non-LLM kinds the stage takes; None where the pipeline checks kinds itself."""
    stage = next((s for s in task.stages if s.name == name), None)
    if stage is None:
        return []
    where = f"stages[{name}]"
    problems: list[Problem] = []
    if stage.aggregator not in aggregators:
        problems.append(
            Problem(
                field=f"{where}.aggregator",
                message=f"{stage.aggregator!r} does not fit this stage "
                f"(use {' or '.join(sorted(aggregators))})",
            )
        )
    fuser = stage.aggregator_settings.get("model")
    if stage.aggregator == "fuse" and fuser is not None and fuser not in stage.model_names:
        problems.append(
            Problem(
                field=f"{where}.aggregator_settings.model",
                message=f"fuser {fuser!r} is not one of the stage's models",
            )
        )
    for m in stage.models:
        if non_llm is not None and m.kind != "llm" and m.kind not in non_llm:
            allowed = f" (this stage takes {', '.join(non_llm)})" if non_llm else ""
            problems.append(
                Problem(
                    field=f"{where}.models[{m.name}]",
                    message=f"a {m.kind} choice does not fit this stage{allowed}",
                )
            )
    try:
        prompt = getattr(stage_settings(stage, settings), "prompt", None) or default_prompt
    except ValidationError as e:
        return problems + [
            Problem(field=f"{where}.settings.{'.'.join(map(str, x['loc']))}", message=x["msg"])
            for x in e.errors()
        ]
    path = resolve_prompt(prompt, task.base_dir)
    if not path.is_file():
        problems.append(Problem(field=f"{where}.settings.prompt", message=f"missing {path}"))
        return problems
    template = PromptTemplate.load(path)
    lacking = sorted(set(placeholders) - template.fields())
    unknown = sorted(template.fields() - set(placeholders))
    if lacking:
        problems.append(
            Problem(
                field=f"{where}.settings.prompt",
                message=f"{path.name} lacks the placeholder(s) {lacking}",
            )
        )
    if unknown:
        problems.append(
            Problem(
                field=f"{where}.settings.prompt",
                message=f"{path.name} names {unknown}; this stage fills only "
                f"{sorted(placeholders)}",
            )
        )
    return problems


def metric_problems(task: Task, produced: Collection[str], pipeline: str) -> list[Problem]:
    unknown = [m for m in task.metrics if m not in produced]
    if not unknown:
        return []
    return [
        Problem(field="metrics", message=f"unknown {unknown} ({pipeline}: {', '.join(produced)})")
    ]
