"""`agenttts demo`: the embedded default, a complete AgentTTS search offline on one CPU.

Starts the embedded server (SmolLM2-135M-Instruct on vLLM's CPU build) unless
`$AGENTTTS_EMBEDDED_URL` already names one, and runs the search on the bundled 2Wiki task with that
server as both the pipeline's model and the agent. Small on purpose (a few trials per iteration,
a couple of iterations) so it ends in about ten minutes on two cores; the samples it draws stay in
the sample cache, so a second demo with a new thread replays most of them for free.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from agenttts.cli.main import UserError

DEMO_DB = ".agenttts/demo.sqlite"
DEMO_SETTINGS: dict[str, Any] = {
    "proposer": "agenttts",
    "batch_size": 3,
    "max_iterations": 2,
    "patience": 2,
    "agent_base_url": "embedded",
    "agent_model": "smollm2",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the embedded default: a full search on the bundled 2Wiki task, offline (~10 min)",
        description="Starts the embedded SmolLM2 server (or uses $AGENTTTS_EMBEDDED_URL), runs "
        "AgentTTS on tasks/2wiki.yaml with that server as stage model and agent, and prints the "
        "best configuration, its test metrics and where the report is. A 135M model scores low: "
        "the demo shows the search, not a strong pipeline (see the README for real endpoints).",
    )
    p.add_argument("--task", default="2wiki", help="task file or bundled name (default 2wiki)")
    p.add_argument("--thread", help="thread id (default: a new one per run)")
    p.add_argument("--db", default=DEMO_DB, help=f"checkpoint database (default {DEMO_DB})")
    p.add_argument("--batch-size", type=int, default=DEMO_SETTINGS["batch_size"])
    p.add_argument("--max-iterations", type=int, default=DEMO_SETTINGS["max_iterations"])
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agenttts.environment.embedded import (
        ENV_URL,
        EmbeddedServer,
        EmbeddedServerError,
        stop_on_sigterm,
    )
    from agenttts.environment.task import load_task

    load_task(args.task)  # every problem with the task, before a server is started
    stop_on_sigterm()
    thread = args.thread or time.strftime("demo-%Y%m%d-%H%M%S")
    started = time.monotonic()
    server: EmbeddedServer | None = None
    if not os.environ.get(ENV_URL):
        server = EmbeddedServer()
        print(
            f"starting the embedded server (vLLM CPU, SmolLM2) on port {server.port} ...",
            flush=True,
        )
        try:
            server.start()
        except EmbeddedServerError as e:
            raise UserError(str(e)) from None
        os.environ[ENV_URL] = server.base_url
        print(f"  up in {time.monotonic() - started:.0f} s at {server.base_url}", flush=True)
    else:
        print(f"using the embedded server at {os.environ[ENV_URL]}", flush=True)
    try:
        return _search(args, thread, started)
    finally:
        if server is not None:
            os.environ.pop(ENV_URL, None)
            server.stop()


def _search(args: argparse.Namespace, thread: str, started: float) -> int:
    from agenttts.graph.runner import RunError, RunStopped, describe_update, run_search

    overrides = {
        **DEMO_SETTINGS,
        "batch_size": args.batch_size,
        "max_iterations": args.max_iterations,
    }

    def progress(node: str, update: dict[str, Any]) -> None:
        if not args.quiet:
            print(
                f"[{time.monotonic() - started:5.0f} s] {describe_update(node, update)}", flush=True
            )

    print(
        f"search thread {thread!r} in {args.db} (task {args.task}, proposer agenttts)", flush=True
    )
    try:
        outcome = run_search(args.task, thread, args.db, overrides, on_event=progress)
    except RunError as e:
        raise UserError(str(e)) from None
    except RunStopped as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    values = outcome.values
    best = outcome.best
    test = values.get("test_result") or {}
    trials = outcome.trials
    print()
    rejected = sum(t.status == "rejected" for t in trials)
    print(
        f"done in {time.monotonic() - started:.0f} s: {len(trials) - rejected} trials executed, "
        f"{rejected} proposals rejected by the screen, "
        f"stop: {values.get('stop_reason') or 'not finished'}"
    )
    if best is None:
        print("no trial succeeded; see the report for the errors")
    else:
        print(f"best configuration: {best.config.short()}")
        print(f"  train {_metrics(best.metrics)}  cost {best.nominal_cost:.3g}")
        if test:
            print(f"  test  {_metrics(test.get('metrics') or {})}")
    report = values.get("report") or {}
    if report:
        print(f"report: {Path(report['markdown']).resolve()}")
    print("(SmolLM2-135M scores low; point tasks/paper-2wiki.yaml at real vLLM endpoints for the "
          "paper's setting.)")  # fmt: skip
    return 0


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3f}" for k, v in metrics.items())
