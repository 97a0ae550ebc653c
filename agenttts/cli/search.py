"""`agenttts search TASK --thread ID --db PATH`: start a search, or continue it after a stop."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agenttts.cli.main import UserError

DEFAULT_DB = ".agenttts/runs.sqlite"

#: CLI flag -> Context field; only flags given explicitly reach the run (a resume keeps the rest).
FLAGS = {
    "proposer": "proposer",
    "batch_size": "batch_size",
    "max_iterations": "max_iterations",
    "max_trials": "max_trials",
    "patience": "patience",
    "target": "target",
    "seed": "seed",
    "no_insight": "no_insights",
    "prompts": "prompts_dir",
    "agent_model": "agent_model",
    "agent_base_url": "agent_base_url",
    "agent_key_env": "agent_api_key_env",
    "temperature": "agent_temperature",
    "agent_timeout": "agent_timeout_s",
    "agent_max_tokens": "agent_max_tokens",
    "report_dir": "report_dir",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="search a task's configurations (start, or continue a stopped thread)",
        description="Runs the AgentTTS loop on TASK and checkpoints every step in --db. Killed at "
        "any point, the same command continues the thread where it stopped: no trial is lost or "
        "run twice. Settings not given on a resumed thread are the ones it started with.",
    )
    p.add_argument("task", metavar="TASK", help="task file, or a bundled task name")
    p.add_argument("--thread", help="thread id (default: TASK's name and the proposer)")
    p.add_argument("--db", default=DEFAULT_DB, help=f"checkpoint database (default {DEFAULT_DB})")
    p.add_argument("--proposer", help="search method (default agenttts; see `agenttts runs`)")
    p.add_argument("--batch-size", type=int, help="configurations per iteration (default 10)")
    p.add_argument("--max-iterations", type=int, help="search iterations at most (default 10)")
    p.add_argument("--max-trials", type=int, help="executed trials at most (default: no cap)")
    p.add_argument(
        "--patience",
        type=int,
        help="stop after N iterations without improvement (0: off; default 4)",
    )
    p.add_argument("--target", type=float, help="stop once the main metric reaches this score")
    p.add_argument("--seed", type=int, help="proposer seed (default 0)")
    p.add_argument(
        "--no-insight",
        type=int,
        action="append",
        choices=(1, 2, 3),
        metavar="N",
        help="ablation: switch insight N (1, 2 or 3) off; repeatable",
    )
    p.add_argument("--prompts", metavar="DIR", help="prompt files overriding the shipped ones")
    p.add_argument("--agent-model", help="model name the agent endpoint serves (default smollm2)")
    p.add_argument(
        "--agent-base-url", help="OpenAI-compatible URL of the agent (default: embedded server)"
    )
    p.add_argument("--agent-key-env", help="NAME of the variable holding the agent's key")
    p.add_argument("--temperature", type=float, help="agent temperature (default 0.9)")
    p.add_argument(
        "--agent-timeout", type=float, metavar="S", help="seconds per agent call (default 120)"
    )
    p.add_argument(
        "--agent-max-tokens", type=int, metavar="N", help="tokens per agent answer (default 1024)"
    )
    p.add_argument("--report-dir", help="report folder root (default .agenttts/reports)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=cmd_search)


def overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, name in FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if flag == "patience" and value == 0:
            value = None
        elif flag == "no_insight":
            value = sorted(set(value))
        elif flag in {"prompts", "report_dir"}:
            value = str(Path(value).expanduser())
        out[name] = value
    return out


def default_thread(task: str, proposer: str | None) -> str:
    return f"{Path(task).stem}-{proposer or 'agenttts'}"


def cmd_search(args: argparse.Namespace) -> int:
    from agenttts.graph.runner import RunError, RunStopped, describe_update, run_search

    overrides = overrides_of(args)
    thread = args.thread or default_thread(args.task, overrides.get("proposer"))

    def progress(node: str, update: dict[str, Any]) -> None:
        if not args.quiet:
            print(describe_update(node, update), flush=True)

    try:
        outcome = run_search(args.task, thread, args.db, overrides, on_event=progress)
    except RunError as e:
        raise UserError(str(e)) from None
    except RunStopped as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    v = outcome.values
    best = outcome.best
    test = v.get("test_result") or {}
    if args.json:
        print(
            json.dumps(
                {
                    "thread": thread,
                    "finished": outcome.finished,
                    "resumed": outcome.resumed,
                    "stop_reason": v.get("stop_reason"),
                    "best": best.dump() if best else None,
                    "test": test or None,
                    "report": v.get("report"),
                },
                indent=2,
            )
        )
        return 0
    if not outcome.ran:
        print(f"thread {thread!r} had already finished; nothing to run (see `agenttts show`).")
    print(f"thread {thread}: {v.get('stop_reason') or 'not finished'}")
    if best is not None:
        print(f"best: {best.config.short()}  train {best.score:.4g}  cost {best.nominal_cost:.2f}")
    if test.get("score") is not None:
        print(f"test: {test['score']:.4g}")
    if v.get("report"):
        print(f"report: {v['report']['markdown']}")
    return 0
