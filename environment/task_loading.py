"""Reading task files: YAML to a validated, resolved and checked `Task`, and the bundled tasks.

Every problem is collected (pydantic's field errors, then the whole-task checks, then the
executor's own checks) and raised together as one `TaskError` before any compute is spent.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agenttts.environment.task import WHOLE_FILE, Problem, Task, TaskError
from agenttts.environment.task_checks import check_task, resolve_models
from agenttts.environment.user_files import (
    UnreadableFile,
    error_location,
    load_yaml,
    validation_problems,
)
from agenttts.errors import InputError


def _non_finite(node: Any, loc: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], float]]:
    """Where a parsed YAML tree holds infinity or NaN, as pydantic-style locations."""
    if isinstance(node, float) and not math.isfinite(node):
        return [(loc, node)]
    if isinstance(node, dict):
        return [hit for k, v in node.items() for hit in _non_finite(v, (*loc, k))]
    if isinstance(node, list):
        return [hit for i, v in enumerate(node) for hit in _non_finite(v, (*loc, i))]
    return []


def parse_task(raw: Any, source: str = "<memory>", base_dir: Path | None = None) -> Task:
    """Validate a task mapping, fill it from its deployment file and check it as a whole; raises
    TaskError listing every problem."""
    if not isinstance(raw, dict):
        holds = {type(None): "nothing", str: "text", list: "a list"}.get(type(raw), "a value")
        why = f"a task file must be a YAML mapping (this one holds {holds})"
        raise TaskError(source, [Problem(field=WHOLE_FILE, message=why)])
    infinite = [
        Problem(field=error_location(loc, raw), message=f"must be a finite number (got {value})")
        for loc, value in _non_finite(raw)
    ]
    if infinite:  # also where no schema looks: the settings a pipeline reads as it likes
        raise TaskError(source, infinite)
    try:
        task = Task.model_validate(raw)
    except ValidationError as e:
        problems = [Problem(field=f, message=m) for f, m in validation_problems(e, raw)]
        raise TaskError(source, problems) from None
    task.set_origin(source, base_dir or Path.cwd())
    resolved, unresolved = resolve_models(task)
    problems = check_task(resolved, unresolved)
    if problems:
        raise TaskError(source, problems)
    return resolved


def load_task(path: str | Path, *, check_environment: bool = True) -> Task:
    """Read, validate and check a task file. Bundled task names (see `agenttts.tasks`) work too."""
    p = resolve_task_path(path)
    try:
        raw = load_yaml(p, "task file")
    except UnreadableFile as e:
        raise TaskError(e.where, [Problem(field=WHOLE_FILE, message=e.reason)]) from None
    task = parse_task(raw, source=str(p), base_dir=p.parent)
    if check_environment:
        from agenttts.environment.registry import executor_class

        try:
            problems = executor_class(task.environment.kind).check_task(task)
        except InputError as e:  # an unknown kind
            problems = [Problem(field="environment.kind", message=str(e))]
        except ImportError as e:  # a known kind whose module or dependencies are not installed
            problems = [
                Problem(
                    field="environment.kind",
                    message=f"executor {task.environment.kind!r} cannot be loaded: {e}",
                )
            ]
        if problems:
            raise TaskError(str(p), problems)
    return task


def bundled_tasks() -> dict[str, Path]:
    """Task files shipped with agenttts by name: tasks/*.yaml and one folder down (simulated/),
    deployment files excepted."""
    from importlib.resources import files

    root = Path(str(files("agenttts.tasks")))
    paths = sorted(root.glob("*.yaml")) + sorted(
        p for p in root.glob("*/*.yaml") if p.parent.name != "deployments"
    )
    return {p.stem: p for p in paths}


def resolve_task_path(path: str | Path) -> Path:
    """A path as given when it exists or names a YAML file; else a bundled task's name."""
    p = Path(path)
    if p.exists() or p.suffix in {".yaml", ".yml"}:
        return p
    return bundled_tasks().get(str(path), p)
