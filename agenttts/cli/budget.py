"""`agenttts budget FILE [--config JSON]`: the paper's budget of a configuration, or of the task.

Needs no server and no executor: only the task's stages, lengths and parameter counts.
"""

from __future__ import annotations

import argparse
import json

from agenttts.cli.common import fmt_params, fmt_units, parse_config_arg, plain_table
from agenttts.environment.space import (
    Config,
    cheapest_config,
    config_problems,
    count_feasible,
    largest_single_sample_config,
    stage_costs,
)
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task
from agenttts.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "budget",
        help="per-stage and total budget of a configuration (or the task's range)",
        description="With --config: each stage's budget and the total, in the paper's units "
        "(one 3B model reading 128 tokens and writing 64). Without: the cheapest and the largest "
        "single-sample configurations and how many configurations fit the task's budget.",
    )
    parser.add_argument("file", metavar="FILE", help="task file or bundled task name")
    parser.add_argument(
        "--config",
        metavar="JSON",
        help='{"stage": {"model": NAME, "samples": S}, ...} or @file.json',
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_budget)


def config_breakdown(task: Task, config: Config) -> dict:
    costs = stage_costs(task, config)
    total = sum(costs.values())
    return {
        "stages": [
            {
                "stage": s.name,
                "model": config[s.name].model,
                "params": s.model(config[s.name].model).params,
                "samples": config[s.name].samples,
                "prompt_tokens": s.lengths(config[s.name].model)[0],
                "gen_tokens": s.lengths(config[s.name].model)[1],
                "cost": costs[s.name],
            }
            for s in task.stages
        ],
        "total": total,
        "budget": task.budget,
        "fits": total <= task.budget + 1e-9,
    }


def render_breakdown(b: dict) -> str:
    rows = [
        [
            s["stage"],
            s["model"],
            fmt_params(s["params"]),
            s["samples"],
            s["prompt_tokens"],
            s["gen_tokens"],
            fmt_units(s["cost"]),
        ]
        for s in b["stages"]
    ]
    rows.append(["total", "", "", "", "", "", fmt_units(b["total"])])
    table = plain_table(["stage", "model", "params", "S", "Np", "Nd", "budget"], rows)
    left = b["budget"] - b["total"]
    verdict = (
        f"fits the budget {fmt_units(b['budget'])} ({fmt_units(left)} left)"
        if b["fits"]
        else f"EXCEEDS the budget {fmt_units(b['budget'])} by {fmt_units(-left)}"
    )
    return f"{table}\n{verdict}"


def cmd_budget(args: argparse.Namespace) -> int:
    task = load_task(args.file, check_environment=False)
    if args.config:
        config = parse_config_arg(task, args.config)
        # Over budget is an answer here, not an error; anything else the config gets wrong is.
        problems = [p for p in config_problems(task, config) if "exceeds the budget" not in p]
        if problems:
            raise InputError("invalid --config: " + "; ".join(problems))
        b = config_breakdown(task, config)
        print(json.dumps(b, indent=2) if args.json else render_breakdown(b))
        return 0
    cheapest = config_breakdown(task, cheapest_config(task))
    largest = config_breakdown(task, largest_single_sample_config(task))
    feasible = count_feasible(task)
    if args.json:
        out = {
            "budget": task.budget,
            "cheapest": cheapest,
            "largest_single_sample": largest,
            "feasible_configurations": feasible,
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"{task.name}: budget {fmt_units(task.budget)}\n")
    print(f"cheapest configuration: {cheapest_config(task).short()}")
    print(render_breakdown(cheapest) + "\n")
    print(f"largest single-sample configuration: {largest_single_sample_config(task).short()}")
    print(render_breakdown(largest) + "\n")
    print(f"feasible configurations: {feasible}")
    return 0
