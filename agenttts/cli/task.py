"""`agenttts task validate FILE` and `task list`: check a task file before spending anything."""

from __future__ import annotations

import argparse

from agenttts.cli.common import fmt_units
from agenttts.environment.task import Task
from agenttts.environment.task_loading import bundled_tasks, load_task


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("task", help="check and list task files")
    sub = parser.add_subparsers(dest="task_command", metavar="ACTION", required=True)
    validate = sub.add_parser(
        "validate",
        help="check a task file field by field (and its executor's data); runs nothing",
        description="Prints OK and a one-line summary, or every problem field by field and exits "
        "with status 2. Makes no model calls. FILE may be a bundled task name (see `task list`).",
    )
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(func=cmd_validate)
    listing = sub.add_parser("list", help="the task files bundled with agenttts")
    listing.set_defaults(func=cmd_list)


def summary(task: Task) -> str:
    stages = ", ".join(
        f"{s.name}: {len(s.models)} model(s), "
        + (f"S in {{{', '.join(map(str, s.samples))}}}" if s.samples else f"S<={s.max_samples}")
        for s in task.stages
    )
    return (
        f"{task.name}: {len(task.stages)} stage(s) ({stages}); budget {fmt_units(task.budget)}; "
        f"main metric {task.main_metric}; environment {task.environment.kind}"
    )


def cmd_validate(args: argparse.Namespace) -> int:
    task = load_task(args.file)  # TaskError -> every problem printed by main, exit 2
    print(f"OK {summary(task)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for name, path in bundled_tasks().items():
        task = load_task(path, check_environment=False)
        print(f"{name:16} {task.environment.kind:10} {task.description.strip()[:70]}")
    return 0
