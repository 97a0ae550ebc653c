"""`agenttts demo`: the embedded default, a complete AgentTTS search offline on one CPU.

Starts the embedded server (SmolLM2-135M-Instruct on vLLM's CPU build) unless
`$AGENTTTS_EMBEDDED_URL` already names one, and runs the search on the bundled 2Wiki task with that
server as both the pipeline's model and the agent (the settings' defaults: `base_url: embedded`
resolves to the server this process started, so nothing is written to the environment). Small on
purpose (a few trials per iteration, a couple of iterations), yet on two CPU cores it takes half an
hour or more (up to 42 QA samples per question); the samples it draws stay in the sample cache, so a
second demo with a new thread replays most of them for free.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from agenttts.cli.settings import add_setting_flags, setting_overrides
from agenttts.errors import ResumableStop
from agenttts.graph.context import Context

DEMO_DB = ".agenttts/demo.sqlite"
#: The demo's own defaults (the rest are the settings' defaults): small, to end in minutes.
DEMO_SETTINGS: dict[str, Any] = {"batch_size": 3, "max_iterations": 2, "patience": 2}
#: The settings the demo's command line offers.
FLAGS = ("batch_size", "max_iterations")


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
    p.add_argument(
        "--db",
        default=DEMO_DB,
        help=f"checkpoint database: SQLite path or postgresql:// URL (default {DEMO_DB})",
    )
    add_setting_flags(p, FLAGS, DEMO_SETTINGS)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agenttts.environment.embedded import EmbeddedServer, embedded_url, stop_on_sigterm
    from agenttts.environment.task_loading import load_task

    load_task(args.task)  # every problem with the task, before a server is started
    Context.from_dict({**DEMO_SETTINGS, **setting_overrides(args, FLAGS)}).validate()  # and flags
    stop_on_sigterm()
    thread = args.thread or time.strftime("demo-%Y%m%d-%H%M%S")
    started = time.monotonic()
    server: EmbeddedServer | None = None
    url = embedded_url()  # $AGENTTTS_EMBEDDED_URL, else none yet
    if url is None:
        server = EmbeddedServer()
        print(
            f"starting the embedded server (vLLM CPU, SmolLM2) on port {server.port} ...",
            flush=True,
        )
        server.start()  # `embedded` now resolves to it, for the agent and the task's models
        print(f"  up in {time.monotonic() - started:.0f} s at {server.base_url}", flush=True)
    else:
        print(f"using the embedded server at {url}", flush=True)
    try:
        try:
            return _search(args, thread, started)
        except ResumableStop as e:
            if server is None or server.alive:
                raise
            # The server died under the search (the stop names why): start it again on the
            # same port and resume the thread once; a second death stops the demo.
            print(f"{e}\nrestarting the embedded server and resuming the thread ...", flush=True)
            server.restart()
            return _search(args, thread, started)
    finally:
        if server is not None:
            server.stop()


def _search(args: argparse.Namespace, thread: str, started: float) -> int:
    from agenttts.cli.node_progress import NodeProgress
    from agenttts.graph.runner import run_search
    from agenttts.graph.storage import display
    from agenttts.progress import set_quiet

    overrides = {**DEMO_SETTINGS, **setting_overrides(args, FLAGS)}
    set_quiet(args.quiet)
    progress = NodeProgress(lambda line: print(line, flush=True))

    proposer = Context.from_dict(overrides).proposer
    print(
        f"search thread {thread!r} in {display(args.db)} (task {args.task}, proposer {proposer})",
        flush=True,
    )
    outcome = run_search(
        args.task,
        thread,
        args.db,
        overrides,
        on_event=None if args.quiet else progress.end,
        on_start=None if args.quiet else progress.start,
    )
    values = outcome.values
    best = outcome.best
    test = values.get("test_result") or {}
    trials = outcome.trials
    print()
    print(
        f"done in {time.monotonic() - started:.0f} s: {len(trials.executed())} trials executed, "
        f"{len(trials.rejected())} proposals rejected by the screen, "
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
