"""`agenttts bench`: tasks x methods x seeds in one search loop, against the exhaustive optimum."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agenttts.cli.settings import add_setting_flags, setting_overrides
from agenttts.errors import InputError
from agenttts.graph.context import Context

DEFAULT_METHODS = "insight,random,tpe,grid"
#: The run settings a bench sets for every run; the rest are the bench's own (`search_bench`).
SETTINGS = (
    "max_trials",
    "batch_size",
    "agent_base_url",
    "agent_model",
    "agent_api_key_env",
    "agent_params",
    "agent_max_tokens",
)
#: A bench run ends at its trial cap.
DEFAULTS = {"max_trials": 100}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="compare search methods on tasks against the exhaustive optimum",
        description="Run every method on every task for every seed through the same checkpointed "
        "search loop and report trials (and seconds) to the exhaustive optimum, final scores and "
        "the search's own cost. Runs are threads in one checkpoint database: run the same command "
        "again to continue a bench that was stopped.",
    )
    p.add_argument(
        "tasks",
        nargs="*",
        help="task files or names (default: the bench's tasks, the six simulated sim-2wiki ... "
        "sim-chatdev and the five synthetic syn-gsm ... syn-tools)",
    )
    p.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help="comma-separated proposers; ablations as NAME-noK, e.g. insight-no2; NAME+nofree "
        "without free evaluations, e.g. tpe+nofree "
        f"(default: {DEFAULT_METHODS}; the methods that ask an LLM agent run only when named)",
    )
    p.add_argument(
        "--seeds", type=int, default=10, help="seeds 0..N-1 per method (default %(default)s)"
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.005,
        help="a run reaches the optimum at train score >= optimum - tolerance "
        "(default %(default)s)",
    )
    p.add_argument(
        "--racing",
        dest="racing_shares",
        default="off",
        metavar="SHARES",
        help="comma-separated racing shares every method runs with ('off': without racing), e.g. "
        "off,0.25 sets each method with racing on training items against itself without "
        "(default %(default)s)",
    )
    p.add_argument(
        "--frontier",
        nargs="?",
        const="0.25,0.5,1",
        metavar="SHARES",
        help="frontier mode: each method searches budgets at these shares of each task's budget "
        "(default 0.25,0.5,1) in one search and, from the same seeds, one search per budget; "
        "--max-trials caps each separate search (the shared one: their sum); writes "
        "frontier.json/.md and a frontier plot per task in OUT/frontier",
    )
    p.add_argument("--out", default="docs/search-bench", help="folder for bench.json/.md and plots")
    p.add_argument(
        "--db",
        default=None,
        help="checkpoint database: SQLite path or PostgreSQL URL (default OUT/bench.sqlite)",
    )
    add_setting_flags(p, SETTINGS, DEFAULTS)
    p.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agenttts.search_bench import BENCH_TASKS, BenchSettings, run_bench
    from agenttts.search_bench.output import summary_text, write_outputs

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.seeds < 1:
        raise InputError("--seeds must be at least 1")
    racing = [_share(v.strip()) for v in args.racing_shares.split(",") if v.strip()] or [None]
    overrides = setting_overrides(args, SETTINGS)
    run_settings = Context.from_dict(overrides).validate()  # a bad flag: one error, first
    agent = {k: v for k, v in overrides.items() if k.startswith("agent_")}
    out = Path(args.out)
    settings = BenchSettings(
        tasks=args.tasks or list(BENCH_TASKS),
        methods=methods,
        seeds=list(range(args.seeds)),
        out_dir=out,
        max_trials=args.max_trials,
        batch_size=run_settings.batch_size,
        tolerance=args.tolerance,
        agent=agent,
        db=args.db,
        racing=racing,
    )

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    if args.frontier is not None:
        return run_frontier(args, settings, progress)

    # An unreachable agent stops the bench resumably: finished runs are kept, the rest resume.
    result = run_bench(settings, progress=progress)
    paths = write_outputs(result, out)
    print(summary_text(result))
    print(f"wrote {paths['json']}, {paths['markdown']} and {len(result['tasks'])} plot(s) in {out}")
    return 0


def run_frontier(args: argparse.Namespace, settings: Any, progress: Any) -> int:
    """`bench --frontier`: the shared search of several budgets against one per budget."""
    import shlex
    from dataclasses import replace

    from agenttts.cli.common import plain_table
    from agenttts.search_bench.frontier import (
        FRONTIER_HEADER,
        frontier_rows,
        run_frontier_bench,
        write_frontier,
    )

    try:
        shares = [float(v) for v in args.frontier.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--frontier: {args.frontier!r} is no list of shares") from None
    out = settings.out_dir / "frontier"
    settings = replace(settings, out_dir=out, db=settings.db or out / "bench.sqlite")
    result = run_frontier_bench(settings, shares, progress=progress)
    command = shlex.join(["agenttts", "bench", *sys.argv[2:]])
    paths = write_frontier(result, out, command)
    print(plain_table(FRONTIER_HEADER, frontier_rows(result)))
    print(f"wrote {paths['json']}, {paths['markdown']} and {len(result['plots'])} plot(s) in {out}")
    return 0


def _share(text: str) -> float | None:
    if text.lower() in ("off", "none", "0"):
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"--racing: {text!r} is neither 'off' nor a share such as 0.25") from None
