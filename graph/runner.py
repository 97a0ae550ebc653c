"""Start or continue a search thread in a checkpoint database (CLI, demo, benchmarks).

Every step is checkpointed with ``durability="sync"``: a process killed anywhere loses at most the
node it was in, and running the same thread again re-runs only that node (the state's `pending`
proposals and trial ids come from the checkpoint, so nothing is asked, run or numbered twice).
"""

from __future__ import annotations

import ast
import contextlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agenttts import racing
from agenttts.archive import Archive, Trial
from agenttts.environment.embedded import dead_server_note
from agenttts.environment.task_loading import load_task, resolve_task_path
from agenttts.errors import InputError, ResumableStop, UserCodeError
from agenttts.graph.context import Context, conflict_error, setting_conflicts
from agenttts.graph.graph import make_graph
from agenttts.graph.storage import display, open_checkpointer, thread_ids, unavailable
from agenttts.graph.writer_lock import ThreadLock, live_writers
from agenttts.nodes.check_stop import stop_reason

log = logging.getLogger("agenttts.runner")

#: Far above any real search (5 steps per iteration); LangGraph's default would also do.
RECURSION_LIMIT = 100_000

Event = Callable[[str, Mapping[str, Any]], None]


@dataclass
class SearchOutcome:
    thread_id: str
    values: dict[str, Any]
    next: tuple[str, ...] = ()
    resumed: bool = False
    ran: bool = True
    settings: Context = field(default_factory=Context)

    @property
    def finished(self) -> bool:
        return not self.next

    @property
    def trials(self) -> Archive:
        return Archive.from_state(self.values)

    @property
    def best(self) -> Trial | None:
        return self.trials.best()


def thread_config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": RECURSION_LIMIT}


def _same_task(a: str, b: str) -> bool:
    try:
        return Path(resolve_task_path(a)).resolve() == Path(resolve_task_path(b)).resolve()
    except OSError:
        return a == b


def settle_settings(
    stored: Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> tuple[Context, list[str]]:
    """The settings a run uses: for a new run the overrides on the defaults (or the environment's
    `AGENTTTS_<FIELD>`); for a resumed one the recorded settings, never the environment, with the
    overrides that do not change what is searched. Returns the conflicts too (an override of a
    search-defining setting with another value)."""
    if stored is None:
        return Context.from_dict(overrides), []
    base = Context.from_dict(stored).to_dict()
    return Context.from_dict({**base, **overrides}), setting_conflicts(base, overrides)


def run_search(
    task_ref: str,
    thread_id: str,
    db: str | Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    on_event: Event | None = None,
    on_start: Event | None = None,
    interrupt_before: Sequence[str] = (),
    resume_command: str | None = None,
) -> SearchOutcome:
    """Start `thread_id` on `task_ref`, or continue it from its last checkpoint.

    `overrides` are Context fields given explicitly (a resumed run keeps the rest as recorded).
    `on_start(node, state)` is called as a node starts, `on_event(node, update)` as it ends.
    Raises InputError (a TaskError among them) before anything is spent; ResumableStop, naming
    the thread to resume, when the agent or an endpoint cannot be reached; UserCodeError when the
    task's own code fails every item. A stop's message ends with `resume_command`, the exact
    command that continues the thread (the caller's; "the same command" when not given).
    """
    again = f"continue with `{resume_command}`" if resume_command else "run the same command again"
    overrides = dict(overrides or {})
    task = load_task(task_ref)  # every problem with the task file, before any compute
    with open_checkpointer(db) as saver, ThreadLock(db, thread_id) as lock:
        graph = make_graph(saver, interrupt_before=interrupt_before)
        cfg = thread_config(thread_id)
        snap = graph.get_state(cfg)
        resumed = bool(snap.values)
        stored_task = snap.values.get("task")
        if stored_task and not _same_task(stored_task, task_ref):
            raise InputError(
                f"thread {thread_id!r} searches task {stored_task!r}, not {task_ref!r}; "
                "use another --thread for another task"
            )
        settings, conflicts = settle_settings(
            snap.values.get("settings") if resumed else None, overrides
        )
        if conflicts:
            raise conflict_error(thread_id, conflicts)
        settings.validate()
        racing.check(task, settings.racing)  # racing on an aggregate-only executor: refused here
        if resumed and ended(snap):
            if stop_reason(snap.values, settings) is not None:  # it would stop right there again
                return SearchOutcome(thread_id, dict(snap.values), (), True, False, settings)
            # Raised limits lift the recorded stop: continue from the stop check, as if it had
            # said "go on"; the test result and report are redone at the new end.
            log.info(
                "thread %r had stopped (%s); continuing it under the new limits",
                thread_id,
                snap.values.get("stop_reason"),
            )
            graph.update_state(
                cfg, {"stop_reason": None, "test_result": None, "report": None}, "check_stop"
            )

        inp = None if resumed else {"task": task_ref, "settings": settings.record()}
        modes = ["updates", "tasks"] if on_start is not None else ["updates"]
        try:
            for mode, chunk in graph.stream(
                inp, cfg, context=settings, durability="sync", stream_mode=modes
            ):
                if mode == "tasks":  # a task starting carries its input, a finished one not
                    if on_start is not None and "input" in chunk:
                        on_start(chunk["name"], chunk["input"] or {})
                    continue
                for node, update in chunk.items():
                    if on_event is not None and isinstance(update, Mapping):
                        on_event(node, update)
                lock.check()
        except ResumableStop as e:
            dead = dead_server_note()  # "unreachable" alone hides a crashed embedded server
            go_on = f"once {e.resume_when}, {again}"
            if e.with_flags:  # it needs more room, not more waiting: the command says how much
                go_on = f"{e.resume_when}: " + (
                    f"continue with `{resume_command} {e.with_flags}`"
                    if resume_command
                    else f"run the same command again with `{e.with_flags}`"
                )
            raise ResumableStop(
                f"{e}{f'; {dead}' if dead else ''}\nThe run stopped; thread {thread_id!r} is "
                f"saved in {display(db)} — {go_on}."
            ) from None
        except UserCodeError as e:
            raise UserCodeError(
                f"{e}\nThe run stopped; thread {thread_id!r} is saved in {display(db)} — once the "
                f"code is fixed, {again}."
            ) from None
        except unavailable() as e:
            raise ResumableStop(
                f"the checkpoint database failed ({str(e).strip()}).\nThe run stopped; thread "
                f"{thread_id!r} is saved in {display(db)} up to its last checkpoint — once the "
                f"database is back, {again}."
            ) from None
        final = graph.get_state(cfg)
        return SearchOutcome(
            thread_id, dict(final.values), tuple(final.next), resumed, True, settings
        )


# ------------------------------------------------------------------------------------------------
# Reading threads back (runs, show)
# ------------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    thread_id: str
    task: str
    proposer: str
    status: str
    iteration: int
    trials: int
    best: float | None
    stop_reason: str | None
    error: str | None = None  # what stopped an unfinished thread, in full


def ended(snap: Any) -> bool:
    """Whether a thread ran to its end. No next node is not enough: a run killed after a step's
    nodes saved their results but before the step's checkpoint has no next node either (LangGraph
    lists only nodes still to run), yet its tasks hold those results; running it again applies
    them and goes on from there."""
    return not snap.next and not snap.tasks


def status_of(snap: Any) -> str:
    """One short line: finished, resumable before a node, or stopped in one and why (in brief)."""
    if ended(snap):
        return "finished"
    if not snap.next:  # a step's results saved, its checkpoint not (see `ended`)
        return f"resumable after {snap.tasks[0].name}"
    error = stop_error(snap)
    if error:
        brief = error if len(error) <= STATUS_CHARS else error[: STATUS_CHARS - 1] + "…"
        return f"stopped in {snap.next[0]}: {brief}"
    return f"resumable before {snap.next[0]}"


#: How much of a stop's message the status column shows (`runs --json` has all of it).
STATUS_CHARS = 60
_REPR = re.compile(r"^\w+\((?P<message>(['\"]).*\2)\)$", re.DOTALL)


def stop_error(snap: Any) -> str | None:
    """The message of the error that stopped a thread, without the exception's repr around it
    (a checkpoint keeps `ResumableStop('model \\'a\\' ...')`), unescaped, first line only."""
    errors = [str(t.error) for t in snap.tasks if getattr(t, "error", None)]
    if not errors:
        return None
    text = errors[0].strip()
    match = _REPR.match(text)
    if match:
        with contextlib.suppress(ValueError, SyntaxError):  # a repr is a Python literal
            text = str(ast.literal_eval(match.group("message")))
    return (text.splitlines() or [""])[0]


def read_thread(db: str | Path, thread_id: str) -> Any:
    """The thread's latest state snapshot; InputError when the database has no such thread."""
    with open_checkpointer(db, create=False) as saver:
        snap = make_graph(saver).get_state(thread_config(thread_id))
    if not snap.values:
        raise InputError(f"no thread {thread_id!r} in {display(db)}")
    return snap


@dataclass(frozen=True)
class Mark:
    """A thread at one checkpoint: executed trials, seconds since its start, the agent's usage."""

    executed: int
    seconds: float
    agent_usage: Mapping[str, Any]


def timeline(db: str | Path, thread_id: str) -> list[Mark]:
    """The thread at each checkpoint, oldest first, timed by the checkpoints' own timestamps: the
    same numbers whether the run happened now or is read back (the bench's seconds and agent
    cost up to the trial that reached the optimum)."""
    with open_checkpointer(db, create=False) as saver:
        history = list(make_graph(saver).get_state_history(thread_config(thread_id)))
    latest = ((history[0].values or {}).get("archive") or []) if history else []
    within = Archive.from_state({"archive": latest}).executed_within()
    out: list[Mark] = []
    start: datetime | None = None
    for snap in reversed(history):
        if not snap.created_at:
            continue
        at = datetime.fromisoformat(snap.created_at)
        start = start or at
        values = snap.values or {}
        trials = values.get("archive") or []
        k = len(trials)
        if k <= len(latest) and (k == 0 or trials[-1] == latest[k - 1]):
            done = within[k]  # a head of the latest archive (it only grows by appending)
        else:  # replaced (Studio's overwrite): read as it is
            done = len(Archive.from_state(values).executed())
        out.append(Mark(done, (at - start).total_seconds(), values.get("agent_usage") or {}))
    return out


def list_runs(db: str | Path) -> list[RunSummary]:
    """Every thread in `db`, oldest first; a thread a live process is writing shows as running."""
    out = []
    with open_checkpointer(db, create=False) as saver:
        graph = make_graph(saver)
        writing = live_writers(db)
        for tid in thread_ids(saver):
            snap = graph.get_state(thread_config(tid))
            v = snap.values
            archive = Archive.from_state(v)
            best = archive.best()
            out.append(
                RunSummary(
                    thread_id=tid,
                    task=str(v.get("task", "")),
                    proposer=str((v.get("settings") or {}).get("proposer", "")),
                    status=f"running ({writing[tid]})" if tid in writing else status_of(snap),
                    iteration=int(v.get("iteration") or 0),
                    trials=len(archive.executed()),
                    best=best.score if best else None,
                    stop_reason=v.get("stop_reason"),
                    error=stop_error(snap),
                )
            )
    return out
