"""`agenttts evaluate FILE --config JSON --split test`: run one configuration through the task's
executor (grid, samples, live, ...) and print its metrics and cost."""

from __future__ import annotations

import argparse

from agenttts.cli.common import fmt_units, parse_config_arg, plain_table
from agenttts.environment.executor import TrialResult
from agenttts.environment.registry import run_batch
from agenttts.environment.space import config_problems
from agenttts.environment.splits import Split, has_split
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task
from agenttts.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="run one configuration on a split and print its metrics and cost",
        description="Runs one configuration through whatever executor the task names. Exit "
        "status 0 when the trial succeeded, 1 when it ran and failed (the error is printed), "
        "2 for a bad task or configuration (nothing runs).",
    )
    parser.add_argument("file", metavar="FILE", help="task file or bundled task name")
    parser.add_argument(
        "--config",
        metavar="JSON",
        required=True,
        help='{"stage": {"model": NAME, "samples": S}, ...} or @file.json',
    )
    parser.add_argument(
        "--split",
        choices=["train", "test"],
        default=None,
        help="default: test, or train on a train-only task (data.test_size: 0)",
    )
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.set_defaults(func=cmd_evaluate)


def result_text(task: Task, result: TrialResult) -> str:
    lines = [f"{task.name} [{result.split}] {result.config.short()}"]
    if result.metrics:
        lines.append(
            "metrics: "
            + ", ".join(
                f"{k}={v:.4f}" + (" (main)" if k == task.main_metric else "")
                for k, v in result.metrics.items()
            )
        )
    rows = [
        [
            name,
            fmt_units(r.nominal_cost),
            fmt_units(r.measured_cost),
            r.prompt_tokens,
            r.completion_tokens,
            r.calls,
            r.cached_samples,
        ]
        for name, r in result.stages.items()
    ]
    rows.append(
        [
            "total",
            fmt_units(result.nominal_cost),
            fmt_units(result.measured_cost),
            result.prompt_tokens,
            result.completion_tokens,
            result.calls,
            "",
        ]
    )
    lines.append(
        plain_table(
            ["stage", "nominal", "measured", "prompt tok", "completion tok", "calls", "cached"],
            rows,
        )
    )
    lines.append(f"wall time: {result.wall_time_s:.3f} s")
    lines.append(f"source: {result.source or '-'}")
    lines.append(f"error: {result.error}" if result.error else "status: ok")
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    task = load_task(args.file)  # includes the executor's own checks: nothing runs on a bad task
    config = parse_config_arg(task, args.config)
    problems = config_problems(task, config)
    if problems:
        raise InputError("invalid --config: " + "; ".join(problems))
    split: Split = args.split or ("test" if has_split(task.data, "test") else "train")
    (result,) = run_batch(task, [config], split)
    print(result.model_dump_json(indent=2) if args.json else result_text(task, result))
    return 0 if result.ok else 1
