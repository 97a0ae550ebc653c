"""`agenttts show ID --db PATH`: one thread's archive, preferences, guidelines and outcome."""

from __future__ import annotations

import argparse
import json

from agenttts.cli.common import plain_table
from agenttts.cli.search import DB_HELP, DEFAULT_DB


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("show", help="print a search thread's archive and guidelines")
    p.add_argument("thread", metavar="ID", help="thread id (see `agenttts runs`)")
    p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    p.add_argument("--json", action="store_true", help="the whole thread state as JSON")
    p.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    from agenttts.archive import Archive
    from agenttts.graph.runner import read_thread, status_of, stop_error
    from agenttts.report import ARCHIVE_HEADER, archive_rows, search_cost, search_cost_line

    snap = read_thread(args.db, args.thread)
    v = snap.values
    if args.json:
        status = {"status": status_of(snap), "error": stop_error(snap), "next": list(snap.next)}
        print(json.dumps({**status, **v}, indent=2))
        return 0
    archive = Archive.from_state(v)
    settings = v.get("settings") or {}
    print(f"thread {args.thread}: task {v.get('task')}, proposer {settings.get('proposer')}")
    print(f"status: {status_of(snap)}; iteration {v.get('iteration', 0)}")
    if v.get("stop_reason"):
        print(f"stop reason: {v['stop_reason']}")
    if stop_error(snap):
        print(f"stopped by: {stop_error(snap)}")
    print()
    print(plain_table(ARCHIVE_HEADER, archive_rows(archive)) if archive else "(no trials yet)")
    best = archive.best()
    if best is not None:
        print(f"\nbest: trial {best.trial_id} {best.config.short()} score {best.score:.4g}")
    if archive:
        print(search_cost_line(search_cost(v)))
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
