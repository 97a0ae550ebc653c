"""Reading task files: YAML to a validated, resolved and checked `Task`, and the bundled tasks.

Every problem is collected (pydantic's field errors, then the whole-task checks, then the
executor's own checks) and raised together as one `TaskError` before any compute is spent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agenttts.environment.task import Problem, Task, TaskError
from agenttts.environment.task_checks import check_task, resolve_models
from agenttts.errors import InputError


def _loc(loc: Sequence[Any], raw: Mapping[str, Any]) -> str:
    """Render a pydantic error location with stage names instead of list indexes where possible."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            name = (
                node[item].get("name")
                if isinstance(node, list) and item < len(node) and isinstance(node[item], dict)
                else None
            )
            parts[-1] = f"{parts[-1]}[{name if name else item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "<root>"


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
        raise TaskError(
            source, [Problem(field="<root>", message="a task file must be a YAML mapping")]
        )
    infinite = [
        Problem(field=_loc(loc, raw), message=f"must be a finite number (got {value})")
        for loc, value in _non_finite(raw)
    ]
    if infinite:  # YAML's .inf and .nan parse as floats: a budget of .inf would pass every check
        raise TaskError(source, infinite)
    try:
        task = Task.model_validate(raw)
    except ValidationError as e:
        problems = [Problem(field=_loc(err["loc"], raw), message=err["msg"]) for err in e.errors()]
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
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskError(str(path), [Problem(field="<file>", message="no such task file")]) from None
    except IsADirectoryError:
        raise TaskError(
            str(p), [Problem(field="<file>", message="is a folder, not a task file")]
        ) from None
    except UnicodeDecodeError as e:
        raise TaskError(
            str(p),
            [Problem(field="<file>", message=f"not UTF-8 text (byte {e.start}): {e.reason}")],
        ) from None
    except OSError as e:
        raise TaskError(str(p), [Problem(field="<file>", message=e.strerror or str(e))]) from None
    except yaml.YAMLError as e:
        raise TaskError(str(p), [Problem(field="<yaml>", message=f"not valid YAML: {e}")]) from None
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
