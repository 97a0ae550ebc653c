"""`agenttts export THREAD [--budget B] [--out FILE]`: the configuration a search chose, as a
YAML file that runs outside the search (`use_config`, `AGENTTTS_CONFIG`, `agenttts run`)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from agenttts.cli.search import DB_HELP, DEFAULT_DB
from agenttts.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a thread's best configuration as a file that runs outside the search",
        description="Writes the thread's best configuration (per stage: model, samples, "
        "aggregator, request settings, and the deployment entries that reach its models; never "
        "a key) as YAML, for `agenttts.pipeline.use_config(FILE)`, AGENTTTS_CONFIG=FILE or "
        "`agenttts run TASK --config FILE`. Run it where the search ran: the task file and "
        "the sample cache are found as the search found them.",
    )
    p.add_argument("thread", metavar="THREAD", help="thread id (see `agenttts runs`)")
    p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    p.add_argument(
        "--budget",
        type=float,
        metavar="B",
        help="the budget whose best configuration to write (a search of several budgets: one "
        "of them; default: the thread's budget)",
    )
    p.add_argument("--out", metavar="FILE", help="write here (default: print the YAML)")
    p.set_defaults(func=cmd_export)


def pick_budget(thread: str, budgets: list[float], asked: float | None) -> float:
    """The budget to export: the one asked for, which must be one the thread searched."""
    if asked is None:
        if len(budgets) > 1:
            listed = ", ".join(f"{b:g}" for b in budgets)
            raise InputError(f"thread {thread!r} searched budgets {listed}: name one with --budget")
        return budgets[0]
    for b in budgets:
        if math.isclose(b, asked, rel_tol=1e-9, abs_tol=1e-12):
            return b
    listed = ", ".join(f"{b:g}" for b in budgets)
    raise InputError(
        f"--budget {asked:g}: thread {thread!r} searched budget {listed} only; search "
        f"{asked:g} to export its best"
    )


def cmd_export(args: argparse.Namespace) -> int:
    from agenttts import frontier
    from agenttts.archive import Archive
    from agenttts.environment.exported import ExportedConfig
    from agenttts.environment.task_loading import load_task
    from agenttts.frontier_report import test_scores, thread_budgets
    from agenttts.graph.runner import read_thread, status_of

    snap = read_thread(args.db, args.thread)
    v = snap.values
    try:
        task = load_task(v["task"])
    except InputError as e:
        raise InputError(
            f"thread {args.thread!r} searched task {v['task']!r}, which cannot be loaded here "
            f"(run export where the search ran): {e}"
        ) from None
    budgets = thread_budgets(v, task)
    budget = pick_budget(args.thread, budgets, args.budget)
    best = frontier.bests(Archive.from_state(v), budgets)[budget]
    if best is None:
        raise InputError(
            f"thread {args.thread!r} has no successful trial to export yet"
            + (f" within budget {budget:g}" if len(budgets) > 1 else "")
        )
    exported = ExportedConfig.of(
        task,
        best.config,
        budget=budget,
        thread=args.thread,
        trial=best.trial_id,
        train_score=best.score,
        test_score=test_scores(v).get(best.config.key()),
    )
    status = status_of(snap)
    head = f"# agenttts export {args.thread}: trial {best.trial_id}, {best.config.short()}\n" + (
        ""
        if status == "finished"
        else f"# the thread is not finished ({status}): its best so far\n"
    )
    text = head + exported.to_yaml()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"--out {out}: cannot write ({e.strerror or e})") from None
    scores = f"train {task.main_metric} {best.score:.4g}" + (
        f", test {exported.test_score:.4g}" if exported.test_score is not None else ""
    )
    print(f"wrote {out}: {best.config.short()} ({scores}) at budget {budget:g}")
    return 0
