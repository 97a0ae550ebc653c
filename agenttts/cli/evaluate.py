"""`agenttts evaluate FILE --config JSON --split test`: run one configuration through the task's
executor (grid, samples, live, ...) and print its metrics and cost; `--items` lists each item's
prediction, gold answer, scores and stage outputs (a live pipeline's)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

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
    parser.add_argument(
        "--items",
        action="store_true",
        help="list each item: its prediction, gold answer, scores and every stage's samples "
        "(live pipelines: python, chain; with --json, under details.records)",
    )
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.set_defaults(func=cmd_evaluate)


def record_items(task: Task) -> dict[str, Any]:
    """The executor setting that keeps each item's record; InputError where there are no items
    to show (a grid or a simulated task holds aggregate scores only)."""
    from agenttts.environment.live.executor import PipelineExecutor
    from agenttts.environment.registry import executor_class

    if not issubclass(executor_class(task.environment.kind), PipelineExecutor):
        raise InputError(
            f"task {task.name!r} runs on the {task.environment.kind} executor, which has no "
            "per-item predictions: they exist for live pipelines (kind python, chain, live)"
        )
    return {"record_items": True}


def _short(value: Any, width: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def items_text(records: Sequence[Mapping[str, Any]], samples_shown: int = 4) -> str:
    """Each item as a person reads it: id and scores (or its error), gold, prediction, then each
    stage's samples (the first few), in the order the pipeline drew them."""
    lines: list[str] = []
    for r in records:
        scores = r.get("scores")
        head = ", ".join(f"{k}={v:.3g}" for k, v in scores.items()) if scores else r.get("error")
        lines.append(f"item {r['id']}: {head}")
        lines.append(f"  gold:       {_short(r.get('gold'))}")
        lines.append(f"  prediction: {_short(r.get('prediction'))}")
        for stage, calls in (r.get("outputs") or {}).items():
            for call in calls:
                texts = call["samples"]
                shown = " | ".join(_short(t, 60) for t in texts[:samples_shown])
                more = (
                    f" (+{len(texts) - samples_shown} more)" if len(texts) > samples_shown else ""
                )
                got = f" -> {_short(call['output'], 60)}" if "output" in call else ""
                lines.append(f"  {stage} ({len(texts)} sample(s)): {shown}{more}{got}")
    return "\n".join(lines)


def items_line(result: TrialResult) -> str:
    """How many items ran and how many failed or timed out, with the first error."""
    from agenttts.report import failed_items_note

    d = result.details
    if "items" not in d:
        return ""
    failed = failed_items_note(d)
    return f"items: {d['items']} evaluated" + (f"; {failed}" if failed else ", none failed")


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
    if items_line(result):
        lines.append(items_line(result))
    failed = result.details.get("failed_items")
    if result.error:
        lines.append(f"error: {result.error}")
    else:
        lines.append(f"status: ok ({failed} item(s) failed, scored 0)" if failed else "status: ok")
    if result.details.get("records"):
        lines += ["", items_text(result.details["records"])]
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    task = load_task(args.file)  # includes the executor's own checks: nothing runs on a bad task
    config = parse_config_arg(task, args.config)
    problems = config_problems(task, config)
    if problems:
        raise InputError("invalid --config: " + "; ".join(problems))
    split: Split = args.split or ("test" if has_split(task.data, "test") else "train")
    overrides = record_items(task) if args.items else {}
    (result,) = run_batch(task, [config], split, **overrides)
    print(result.model_dump_json(indent=2) if args.json else result_text(task, result))
    return 0 if result.ok else 1
