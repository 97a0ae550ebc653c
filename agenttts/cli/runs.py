"""`agenttts runs --db PATH`: the search threads a checkpoint database holds."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from agenttts.cli.common import plain_table
from agenttts.cli.search import DB_HELP, DEFAULT_DB


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("runs", help="list the search threads in a checkpoint database")
    p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object per thread")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args: argparse.Namespace) -> int:
    from agenttts.graph.runner import list_runs
    from agenttts.graph.storage import display

    runs = list_runs(args.db)
    if args.json:
        for r in runs:
            print(json.dumps(asdict(r)))
        return 0
    if not runs:
        print(f"no runs in {display(args.db)}")
        return 0
    rows = [
        [
            r.thread_id,
            r.task,
            r.proposer,
            r.status,
            r.iteration,
            r.trials,
            "-" if r.best is None else f"{r.best:.4g}",
        ]
        for r in runs
    ]
    print(plain_table(["thread", "task", "proposer", "status", "iter", "trials", "best"], rows))
    return 0
