"""`agenttts search TASK --thread ID --db PATH`: start a search, or continue it after a stop."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from agenttts.cli.common import resume_command, run_thread
from agenttts.cli.settings import add_setting_flags, setting_overrides
from agenttts.graph.context import Context

DEFAULT_DB = ".agenttts/runs.sqlite"
DB_HELP = f"checkpoint database: a SQLite path or a postgresql:// URL (default {DEFAULT_DB})"


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
    p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    add_setting_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=cmd_search)


def default_thread(task: str, overrides: dict[str, Any]) -> str:
    return f"{Path(task).stem}-{Context.from_dict(overrides).proposer}"


def cmd_search(args: argparse.Namespace) -> int:
    from agenttts.cli.node_progress import NodeProgress
    from agenttts.progress import set_quiet

    overrides = setting_overrides(args)
    thread = args.thread or default_thread(args.task, overrides)
    progress = NodeProgress(lambda line: print(line, flush=True))
    quiet = args.quiet or args.json
    set_quiet(quiet)
    outcome = run_thread(
        args,
        thread,
        overrides,
        on_event=None if quiet else progress.end,
        on_start=None if quiet else progress.start,
    )
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
        more = (
            f"{resume_command(args, thread)} --max-iterations {outcome.settings.max_iterations + 5}"
        )
        print(
            f"thread {thread!r} had already finished; nothing to run (see `agenttts show`). "
            f"Raise the limit that stopped it to continue it, e.g. `{more}`."
        )
    print(f"thread {thread}: {v.get('stop_reason') or 'not finished'}")
    if best is not None:
        print(f"best: {best.config.short()}  train {best.score:.4g}  cost {best.nominal_cost:.2f}")
    if test.get("score") is not None:
        print(f"test: {test['score']:.4g}")
    elif outcome.finished and best is not None:
        from agenttts.environment.splits import NO_TEST_SPLIT, has_split
        from agenttts.environment.task_loading import load_task

        if not has_split(load_task(v["task"]).data, "test"):
            print(f"test: {NO_TEST_SPLIT}")
    if v.get("report"):
        print(f"report: {v['report']['markdown']}")
    return 0
