"""`agenttts show ID --db PATH`: one thread's archive, preferences, guidelines and outcome."""

from __future__ import annotations

import argparse
import json

from agenttts.cli.common import format_table
from agenttts.cli.main import UserError
from agenttts.cli.search import DEFAULT_DB


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("show", help="print a search thread's archive and guidelines")
    p.add_argument("thread", metavar="ID", help="thread id (see `agenttts runs`)")
    p.add_argument("--db", default=DEFAULT_DB, help=f"checkpoint database (default {DEFAULT_DB})")
    p.add_argument("--json", action="store_true", help="the whole thread state as JSON")
    p.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    from agenttts.archive import best_trial, load_trials
    from agenttts.graph.runner import RunError, read_thread, status_of
    from agenttts.report import ARCHIVE_HEADER, archive_rows

    try:
        snap = read_thread(args.db, args.thread)
    except RunError as e:
        raise UserError(str(e)) from None
    v = snap.values
    if args.json:
        print(json.dumps({"status": status_of(snap), "next": list(snap.next), **v}, indent=2))
        return 0
    trials = load_trials(v.get("archive") or [])
    settings = v.get("settings") or {}
    print(f"thread {args.thread}: task {v.get('task')}, proposer {settings.get('proposer')}")
    print(f"status: {status_of(snap)}; iteration {v.get('iteration', 0)}")
    if v.get("stop_reason"):
        print(f"stop reason: {v['stop_reason']}")
    print()
    print(format_table(ARCHIVE_HEADER, archive_rows(trials)) if trials else "(no trials yet)")
    best = best_trial(trials)
    if best is not None:
        print(f"\nbest: trial {best.trial_id} {best.config.short()} score {best.score:.4g}")
    test = v.get("test_result")
    if test:
        score = test.get("score")
        print(
            f"test: {'-' if score is None else f'{score:.4g}'} {test.get('error') or ''}".rstrip()
        )
    if v.get("preferences"):
        prefs = ", ".join(f"{k}={m}" for k, m in v["preferences"].items())
        print(f"\npreferences: {prefs}")
        if v.get("preference_notes"):
            print(v["preference_notes"])
    print("\nguidelines:")
    print(v.get("guidelines") or "(none)")
    failures = v.get("agent_failures") or []
    if failures:
        print(f"\nagent failures ({len(failures)}):")
        for f in failures:
            print(f"  iteration {f['iteration']} {f['node']}: {f['error'][:200]}")
    if v.get("report"):
        print(f"\nreport: {v['report'].get('markdown')}")
    return 0
