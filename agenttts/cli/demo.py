"""`agenttts demo` (`make demo`): a complete AgentTTS search, live, offline, in minutes on 2 cores.

Starts the embedded server (SmolLM2-135M-Instruct on vLLM's CPU build) unless
`$AGENTTTS_EMBEDDED_URL` already names one, and searches the bundled `demo` task
(`tasks/demo.yaml`: 2WikiMultihopQA retrieval -> QA on 6 training and 6 test questions, at most 8
samples per stage) with that server as both the pipeline's model and the agent: the paper's agent
states preferences, writes guidelines and proposes, and the hybrid agent repairs and tops up its
batches. Small on purpose (`DEMO_SETTINGS`: batches of 3, two iterations, short agent answers), so
it ends in minutes whatever the load; every flag of `search` applies.

Run again, it continues the last demo thread that did not finish, or says why it starts a new one;
a new thread replays the samples earlier demos drew from the sample cache, and says how many. It
ends with what it found, what it spent, where the report is, and the wall time of each phase.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from agenttts.cli.common import run_thread
from agenttts.cli.settings import add_setting_flags, setting_overrides
from agenttts.errors import InputError, ResumableStop
from agenttts.graph.context import Context

DEMO_DB = ".agenttts/demo.sqlite"
DEMO_TASK = "demo"
#: The demo's own defaults (every other setting is the search's): small batches, two iterations,
#: short agent answers (the embedded 135M agent writes 5-30 tokens/s on two busy cores), and the
#: agent's answers kept, so that a second demo replays them with the samples.
DEMO_SETTINGS: dict[str, Any] = {
    "batch_size": 3,
    "max_iterations": 2,
    "patience": 2,
    "agent_max_tokens": 192,
    "agent_cache": ".agenttts/cache/agent.sqlite",
}
THREAD_PREFIX = "demo-"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the embedded default: a complete search on a small bundled task, offline, in minutes",
        description="Starts the embedded SmolLM2 server (or uses $AGENTTTS_EMBEDDED_URL), runs "
        "AgentTTS on the bundled demo task (2Wiki retrieval -> QA, 6+6 questions) with that server "
        "as stage model and agent, and prints what it found, what it spent, where the report is "
        "and how long each phase took. Run again, it continues the last unfinished demo thread. "
        "A 135M model scores low: the demo shows the search, not a strong pipeline (see the "
        "README for real endpoints).",
    )
    p.add_argument("--task", default=DEMO_TASK, help=f"task file or bundled name ({DEMO_TASK})")
    p.add_argument(
        "--thread",
        help="thread id (default: the last demo thread if it did not finish, else a new one)",
    )
    p.add_argument(
        "--db",
        default=DEMO_DB,
        help=f"checkpoint database: SQLite path or postgresql:// URL (default {DEMO_DB})",
    )
    add_setting_flags(p, None, DEMO_SETTINGS)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agenttts.environment.embedded import EmbeddedServer, embedded_url, stop_on_sigterm
    from agenttts.environment.task_loading import load_task

    clock = PhaseClock(started=process_started())
    load_task(args.task)  # every problem with the task, before a server is started
    overrides = {**DEMO_SETTINGS, **setting_overrides(args)}
    Context.from_dict(overrides).validate()  # and with the flags
    thread, why = pick_thread(args.db, args.task, args.thread, overrides)
    if why:
        print(why, flush=True)
    stop_on_sigterm()
    server: EmbeddedServer | None = None
    url = embedded_url()  # $AGENTTTS_EMBEDDED_URL, else none yet
    if url is None:
        server = EmbeddedServer()
        began = time.monotonic()
        print(
            f"starting the embedded server (vLLM CPU, SmolLM2) on port {server.port} ...",
            flush=True,
        )
        server.start()  # `embedded` now resolves to it, for the agent and the task's models
        took = time.monotonic() - began
        clock.add("server start", took)
        print(f"  up in {took:.0f} s at {server.base_url}", flush=True)
    else:
        print(f"using the embedded server at {url}", flush=True)
    try:
        try:
            return _search(args, thread, overrides, clock)
        except ResumableStop as e:
            if server is None or server.alive:
                raise
            # The server died under the search (the stop names why): start it again on the
            # same port and resume the thread once; a second death stops the demo.
            print(f"{e}\nrestarting the embedded server and resuming the thread ...", flush=True)
            server.restart()
            return _search(args, thread, overrides, clock)
    finally:
        if server is not None:
            server.stop()


def pick_thread(
    db: str, task: str, given: str | None, overrides: Mapping[str, Any]
) -> tuple[str, str]:
    """The thread this demo runs and, when it is not the obvious one, why: the last demo thread
    of `task` in `db` continues unless it finished, another process is running it, or it was
    started with other search-defining settings; then a new thread starts."""
    from agenttts.graph.context import setting_conflicts
    from agenttts.graph.runner import list_runs, read_thread
    from agenttts.graph.storage import is_postgres, sqlite_path

    new = time.strftime(f"{THREAD_PREFIX}%Y%m%d-%H%M%S")
    if given:
        return given, ""
    if not is_postgres(db) and not sqlite_path(db).exists():
        return new, ""
    try:
        runs = [r for r in list_runs(db) if r.thread_id.startswith(THREAD_PREFIX)]
    except InputError:
        return new, ""
    if not runs:
        return new, ""
    last = max(runs, key=lambda r: r.thread_id)
    where = f"the last demo thread {last.thread_id!r}"
    if last.status.startswith("running"):
        return new, f"{where} is {last.status}; starting a new thread {new!r}"
    if last.status == "finished":
        return new, (
            f"{where} finished ({last.stop_reason}); starting a new thread {new!r}: the samples "
            "earlier demos drew replay from the sample cache"
        )
    if last.task != task:
        return new, f"{where} searches task {last.task!r}; starting a new thread {new!r}"
    conflicts = setting_conflicts(read_thread(db, last.thread_id).values["settings"], overrides)
    if conflicts:
        return new, (
            f"{where} did not finish, but was started with other settings ({'; '.join(conflicts)})"
            f"; starting a new thread {new!r}"
        )
    return last.thread_id, f"continuing {where}, which did not finish ({last.status})"


def process_started() -> float:
    """When this process started, on the monotonic clock (Python's start-up and imports count
    in the demo's total: on a busy machine they take seconds); now where /proc does not say."""
    try:
        age = time.time() - Path(f"/proc/{os.getpid()}").stat().st_ctime
    except OSError:
        age = 0.0
    return time.monotonic() - max(0.0, age)


@dataclass
class PhaseClock:
    """Wall time per phase of the demo, from the nodes' start and end events; the agent's phases
    (preferences, guidelines, proposals) together, the trials' by whether they initialise."""

    started: float = field(default_factory=time.monotonic)
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    _began: dict[str, float] = field(default_factory=dict)

    PHASES: ClassVar[dict[str, str]] = {
        "init_trials": "initial trials",
        "init_preferences": "agent",
        "generate_guidelines": "agent",
        "propose_trials": "agent",
        "execute_trials": "search trials",
        "final_evaluation": "final evaluation",
    }

    def add(self, phase: str, seconds: float, count: int = 0) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        self.counts[phase] = self.counts.get(phase, 0) + count

    def start(self, node: str, state: Mapping[str, Any]) -> None:
        self._began[node] = time.monotonic()

    def end(self, node: str, update: Mapping[str, Any]) -> None:
        began = self._began.pop(node, None)
        phase = self.PHASES.get(node)
        if began is not None and phase is not None:
            self.add(phase, time.monotonic() - began, 1)

    def lines(self) -> list[str]:
        total = time.monotonic() - self.started
        one, five, _ = self.load
        head = f"wall time by phase (load average {one:.2f}, {five:.2f} at the start):"
        rows = [f"  {name:<18}{s:6.0f} s" for name, s in self.seconds.items()]
        return [head, *rows, f"  {'total':<18}{total:6.0f} s  (the command, start-up included)"]


def _search(
    args: argparse.Namespace, thread: str, overrides: dict[str, Any], clock: PhaseClock
) -> int:
    from agenttts.cli.node_progress import NodeProgress
    from agenttts.graph.storage import display
    from agenttts.progress import set_quiet

    set_quiet(args.quiet)
    progress = NodeProgress(lambda line: print(line, flush=True))
    seen: list[Mapping[str, Any]] = []  # this run's node updates: its trials

    def start(node: str, state: Mapping[str, Any]) -> None:
        clock.start(node, state)
        if not args.quiet:
            progress.start(node, state)

    def end(node: str, update: Mapping[str, Any]) -> None:
        clock.end(node, update)
        seen.append(update)
        if not args.quiet:
            progress.end(node, update)

    print(f"search thread {thread!r} in {display(args.db)} (task {args.task})", flush=True)
    outcome = run_thread(args, thread, overrides, on_event=end, on_start=start)
    print()
    for line in [*summary(outcome.values, seen, thread), *clock.lines()]:
        print(line)
    return 0


def summary(values: Mapping[str, Any], updates: list[Mapping[str, Any]], thread: str) -> list[str]:
    """What the demo found, what it spent, what it replayed, where the report is."""
    from agenttts.archive import Archive, Trial
    from agenttts.environment.task_loading import load_task
    from agenttts.llm import AgentUsage
    from agenttts.report import best_noise, search_cost, search_cost_line

    archive = Archive.from_state(values)
    task = load_task(values["task"], check_environment=False)
    executed = archive.executed()
    lines = [
        f"thread {thread!r}: {values.get('stop_reason') or 'not finished'}; "
        f"{len(executed)} trials executed ({len(executed.failed())} failed), "
        f"{len(archive.rejected())} proposals rejected by the screen"
    ]
    best = archive.best()
    if best is None:
        lines.append("found: no trial succeeded (`agenttts show` lists the errors)")
    else:
        noise = best_noise(archive, task.main_metric)
        close = noise["within_noise"] if noise else []
        lines.append(
            f"found: {best.config.short()} (trial {best.trial_id}), train {task.main_metric} "
            f"{best.score:.3f}"
            + (f" ±{noise['se']:.2f} over {noise['items']} items" if noise else "")
            + (f"; trials {', '.join(map(str, close))} are within noise of it" if close else "")
        )
        test = values.get("test_result")
        if test:
            t = Trial.model_validate(test)
            got = "-" if t.score is None else f"{t.score:.3f}"
            lines.append(f"  test {task.main_metric} {got} over {t.items_evaluated} questions")
    lines.append(f"spent: {search_cost_line(search_cost(values))}")
    ran = [Trial.model_validate(d) for u in updates for d in u.get("archive") or []]
    ran += [Trial.model_validate(u["test_result"]) for u in updates if u.get("test_result")]
    samples = sum(int(t.details.get("samples", 0)) for t in ran)
    cached = sum(int(t.details.get("cached_samples", 0)) for t in ran)
    lines.append(
        f"replayed {cached} of the {samples} samples this run's {len(ran)} trials used from the "
        f"sample cache; drew {samples - cached} in {sum(t.calls for t in ran)} endpoint calls"
    )
    asked = AgentUsage()
    for u in updates:
        if u.get("agent_usage"):
            asked = AgentUsage(**u["agent_usage"])  # the run's running total
    if asked.calls or asked.replayed:
        lines.append(
            f"agent (this thread): {asked.calls} calls ({asked.completion_tokens} tokens written, "
            f"{asked.seconds:.0f} s), {asked.replayed} answer(s) replayed from the agent cache"
        )
    report = values.get("report") or {}
    if report:
        lines.append(f"report: {Path(report['markdown']).resolve()}")
    lines.append(
        "(SmolLM2-135M scores low: the demo shows the search; point tasks/paper-2wiki.yaml at "
        "real vLLM endpoints for the paper's setting.)"
    )
    return lines
