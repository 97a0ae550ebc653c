"""`agenttts bench`: tasks x methods x seeds in one search loop, against the exhaustive optimum."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agenttts.cli.main import UserError

DEFAULT_METHODS = "insight,random,tpe,grid"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="compare search methods on tasks against the exhaustive optimum",
        description="Run every method on every task for every seed through the same checkpointed "
        "search loop and report trials (and seconds) to the exhaustive optimum, final scores and "
        "the search's own cost. Runs are threads in one SQLite database: run the same command "
        "again to continue a bench that was stopped.",
    )
    p.add_argument(
        "tasks",
        nargs="*",
        help="task files or names (default: the six simulated tasks sim-2wiki ... sim-chatdev)",
    )
    p.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"comma-separated proposers; ablations as NAME-noK, e.g. insight-no2 "
        f"(default: {DEFAULT_METHODS}; LLM methods agenttts, agenthpo, mlcopilot only when named)",
    )
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per method (default 10)")
    p.add_argument("--max-trials", type=int, default=100, help="trials per run (default 100)")
    p.add_argument("--batch-size", type=int, default=10, help="proposals per iteration")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.005,
        help="a run reaches the optimum at train score >= optimum - tolerance (default 0.005)",
    )
    p.add_argument("--out", default="docs/bench", help="folder for bench.json/.md and plots")
    p.add_argument("--db", default=None, help="checkpoint database (default OUT/bench.sqlite)")
    p.add_argument("--agent-base-url", default=None, help="agent endpoint for LLM methods")
    p.add_argument("--agent-model", default=None, help="model name the agent endpoint serves")
    p.add_argument("--agent-api-key-env", default=None, help="env var NAME holding the key")
    p.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agenttts.bench import SIMULATED_TASKS, BenchError, BenchSettings, run_bench
    from agenttts.bench.output import format_table, write_outputs

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.seeds < 1:
        raise UserError("--seeds must be at least 1")
    agent = {
        k: v
        for k, v in {
            "agent_base_url": args.agent_base_url,
            "agent_model": args.agent_model,
            "agent_api_key_env": args.agent_api_key_env,
        }.items()
        if v is not None
    }
    out = Path(args.out)
    settings = BenchSettings(
        tasks=args.tasks or list(SIMULATED_TASKS),
        methods=methods,
        seeds=list(range(args.seeds)),
        out_dir=out,
        max_trials=args.max_trials,
        batch_size=args.batch_size,
        tolerance=args.tolerance,
        agent=agent,
        db=Path(args.db) if args.db else None,
    )

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    from agenttts.graph.runner import RunError, RunStopped

    try:
        result = run_bench(settings, progress=progress)
    except (BenchError, RunError) as e:
        raise UserError(str(e)) from None
    except RunStopped as e:  # the agent went away: finished runs are kept, the rest resume
        print(f"error: {e}", file=sys.stderr)
        return 3
    paths = write_outputs(result, out)
    print(format_table(result))
    print(f"wrote {paths['json']}, {paths['markdown']} and {len(result['tasks'])} plot(s) in {out}")
    return 0
