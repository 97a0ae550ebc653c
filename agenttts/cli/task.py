"""`agenttts task validate FILE` and `task list`: check a task file before spending anything."""

from __future__ import annotations

import argparse
import sys

from agenttts.cli.common import fmt_units
from agenttts.environment.budget import M_UNIT, ND_UNIT, NP_UNIT
from agenttts.environment.task import Task
from agenttts.environment.task_loading import bundled_tasks, load_task


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("task", help="check and list task files")
    sub = parser.add_subparsers(dest="task_command", metavar="ACTION", required=True)
    validate = sub.add_parser(
        "validate",
        help="check a task file field by field (and its executor's data); runs nothing",
        description="Prints OK and a one-line summary, or every problem field by field and exits "
        "with status 2. Makes no model calls, unless --dry-run. FILE may be a bundled task name "
        "(see `task list`).",
    )
    validate.add_argument("file", metavar="FILE")
    validate.add_argument(
        "--dry-run",
        action="store_true",
        help="then run one training item on the cheapest configuration and show its prediction, "
        "gold answer, scores and stage outputs (live pipelines; a few endpoint calls): a wrong "
        "output key, a metric that raises or a model the server does not serve shows here, "
        "before a search spends (exit 2 for an error of the task's code)",
    )
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


def budget_warnings(task: Task) -> list[str]:
    """What makes a valid task's budget constrain nothing: every configuration costing 0 (the
    formula floors tiny models at short lengths to 0), or every one fitting the budget."""
    from agenttts.environment.space import stage_options

    most = sum(max(c for *_, c in stage_options(s)) for s in task.stages)
    if most <= 0:
        return [
            "every configuration costs 0 budget units, so the budget constrains nothing: the "
            f"formula ((M / {M_UNIT:g}) * (Np + S * Nd) - {NP_UNIT}) / {ND_UNIT} is below 0, "
            "floored to 0, for models this small at these nominal lengths (135M parameters "
            "stay at 0 below ~2,800 tokens per query). The search still runs, but trades "
            "nothing off; to search as you will deploy, give each model the `params:` of the "
            "model it stands in for and each stage its real `prompt_tokens` / `gen_tokens`"
        ]
    if most <= task.budget:
        return [
            f"every configuration fits the budget (the most expensive costs {fmt_units(most)} "
            f"of {fmt_units(task.budget)}), so the budget constrains nothing"
        ]
    return []


def cmd_validate(args: argparse.Namespace) -> int:
    task = load_task(args.file)  # TaskError -> every problem printed by main, exit 2
    print(f"OK {summary(task)}")
    for warning in budget_warnings(task):
        print(f"warning: {warning}", file=sys.stderr)
    return dry_run(task) if args.dry_run else 0


def dry_run(task: Task) -> int:
    """One training item on the cheapest configuration, shown item by item. An error of the
    task's own code raises `UserCodeError` (exit 2); another failure (a timeout, an endpoint
    failing for good) is printed, exit 1."""
    from agenttts.cli.evaluate import items_line, items_text, record_items
    from agenttts.environment.registry import run_batch
    from agenttts.environment.space import cheapest_config

    overrides = record_items(task)
    config = cheapest_config(task)
    print(f"dry run: the first training item on the cheapest configuration, {config.short()}")
    (result,) = run_batch(task, [config], "train", items=[0], **overrides)
    print(f"{items_line(result)}; {result.calls} endpoint call(s), {result.wall_time_s:.1f} s")
    if result.details.get("records"):
        print(items_text(result.details["records"]))
    if result.error or result.details.get("failed_items"):
        print(f"error: {result.error or result.details.get('first_item_error')}", file=sys.stderr)
        return 1
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for name, path in bundled_tasks().items():
        task = load_task(path, check_environment=False)
        print(f"{name:16} {task.environment.kind:10} {task.description.strip()[:70]}")
    return 0
