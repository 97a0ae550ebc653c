"""Start or continue a search thread in a SQLite checkpoint database (CLI, demo, benchmarks).

Every step is checkpointed with ``durability="sync"``: a process killed anywhere loses at most the
node it was in, and running the same thread again re-runs only that node (the state's `pending`
proposals and trial ids come from the checkpoint, so nothing is asked, run or numbered twice).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

from agenttts.archive import Trial, best_trial, load_trials
from agenttts.environment.task import load_task, resolve_task_path
from agenttts.graph.context import SEARCH_DEFINING, Context
from agenttts.graph.graph import make_graph

#: Far above any real search (5 steps per iteration); LangGraph's default would also do.
RECURSION_LIMIT = 100_000

Event = Callable[[str, Mapping[str, Any]], None]


class RunError(ValueError):
    """A request that cannot run as asked (conflicting settings, unknown thread); nothing spent."""


class RunStopped(RuntimeError):
    """The run stopped before its end for a reason outside it (an unreachable agent); resumable."""


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
    def trials(self) -> list[Trial]:
        return load_trials(self.values.get("archive") or [])

    @property
    def best(self) -> Trial | None:
        return best_trial(self.trials)


@contextmanager
def open_checkpointer(db: str | Path, *, create: bool = True) -> Iterator[SqliteSaver]:
    path = Path(db).expanduser()
    if not create and not path.exists():
        raise RunError(f"no checkpoint database at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with SqliteSaver.from_conn_string(str(path)) as saver:
        # WAL (set by the saver) with synchronous=NORMAL: a commit survives the process being
        # killed (the OS holds it) without an fsync per checkpoint; only a power cut can lose the
        # last few, which the resume then re-runs.
        saver.conn.execute("PRAGMA synchronous=NORMAL")
        yield saver


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
    """The settings a run uses: for a new run the overrides on the defaults; for a resumed one the
    recorded settings with the overrides that do not change what is searched. Returns the
    conflicts too (an override of a search-defining setting with another value)."""
    if stored is None:
        return Context.from_dict(dict(overrides)), []
    base = Context.from_dict(dict(stored)).to_dict()
    conflicts = [
        f"{k}: the thread has {base[k]!r}, asked {overrides[k]!r}"
        for k in SEARCH_DEFINING
        if k in overrides and overrides[k] != base.get(k)
    ]
    return Context.from_dict({**base, **overrides}), conflicts


def run_search(
    task_ref: str,
    thread_id: str,
    db: str | Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    on_event: Event | None = None,
    interrupt_before: Sequence[str] = (),
) -> SearchOutcome:
    """Start `thread_id` on `task_ref`, or continue it from its last checkpoint.

    `overrides` are Context fields given explicitly (a resumed run keeps the rest as recorded).
    Raises TaskError/RunError before anything is spent; RunStopped when the agent is unreachable.
    """
    from agenttts.llm import AgentUnreachable

    overrides = dict(overrides or {})
    load_task(task_ref)  # every problem with the task file, before any compute
    with open_checkpointer(db) as saver:
        graph = make_graph(saver, interrupt_before=interrupt_before)
        cfg = thread_config(thread_id)
        snap = graph.get_state(cfg)
        resumed = bool(snap.values)
        if resumed:
            stored_task = snap.values.get("task", "")
            if not _same_task(stored_task, task_ref):
                raise RunError(
                    f"thread {thread_id!r} searches task {stored_task!r}, not {task_ref!r}; "
                    "use another --thread for another task"
                )
        ctx, conflicts = settle_settings(
            snap.values.get("settings") if resumed else None, overrides
        )
        if conflicts:
            raise RunError(
                f"thread {thread_id!r} was started with other settings ("
                + "; ".join(conflicts)
                + "); run it with its own settings or start another --thread"
            )
        problems = ctx.problems()
        if problems:
            raise RunError("; ".join(problems))
        if resumed and not snap.next:
            return SearchOutcome(thread_id, dict(snap.values), (), True, False, ctx)

        inp = None if resumed else {"task": task_ref, "settings": ctx.to_dict()}
        try:
            for chunk in graph.stream(
                inp, cfg, context=ctx, durability="sync", stream_mode="updates"
            ):
                for node, update in chunk.items():
                    if on_event is not None and isinstance(update, Mapping):
                        on_event(node, update)
        except AgentUnreachable as e:
            raise RunStopped(
                f"{e}. The run stopped; thread {thread_id!r} is saved in {db} — run the same "
                "command again to continue once the agent is reachable."
            ) from None
        final = graph.get_state(cfg)
        return SearchOutcome(thread_id, dict(final.values), tuple(final.next), resumed, True, ctx)


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


def thread_ids(db: str | Path) -> list[str]:
    path = Path(db).expanduser()
    if not path.exists():
        raise RunError(f"no checkpoint database at {path}")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT thread_id, MIN(rowid) FROM checkpoints GROUP BY thread_id ORDER BY 2"
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # a database with no checkpoint table yet holds no runs
    finally:
        con.close()
    return [r[0] for r in rows]


def status_of(snap: Any) -> str:
    if not snap.next:
        return "finished"
    errors = [t.error for t in snap.tasks if getattr(t, "error", None)]
    if errors:
        return f"stopped in {snap.next[0]}: {str(errors[0]).splitlines()[0][:80]}"
    return f"resumable before {snap.next[0]}"


def read_thread(db: str | Path, thread_id: str) -> Any:
    """The thread's latest state snapshot; RunError when the database has no such thread."""
    with open_checkpointer(db, create=False) as saver:
        snap = make_graph(saver).get_state(thread_config(thread_id))
    if not snap.values:
        raise RunError(f"no thread {thread_id!r} in {db}")
    return snap


def list_runs(db: str | Path) -> list[RunSummary]:
    out = []
    ids = thread_ids(db)
    with open_checkpointer(db, create=False) as saver:
        graph = make_graph(saver)
        for tid in ids:
            snap = graph.get_state(thread_config(tid))
            v = snap.values
            trials = load_trials(v.get("archive") or [])
            best = best_trial(trials)
            out.append(
                RunSummary(
                    thread_id=tid,
                    task=str(v.get("task", "")),
                    proposer=str((v.get("settings") or {}).get("proposer", "")),
                    status=status_of(snap),
                    iteration=int(v.get("iteration") or 0),
                    trials=sum(t.status != "rejected" for t in trials),
                    best=best.score if best else None,
                    stop_reason=v.get("stop_reason"),
                )
            )
    return out


def describe_update(node: str, update: Mapping[str, Any]) -> str:
    """One progress line per node, for people watching a run."""
    trials = load_trials(update.get("archive") or [])
    failures = len(update.get("agent_failures") or [])
    extra = f", {failures} agent failure(s) recorded" if failures else ""
    if node == "init_by_preference":
        prefs = update.get("preferences") or {}
        pref = ("; preferences " + ", ".join(f"{k}={v}" for k, v in prefs.items())) if prefs else ""
        return f"init: {len(trials)} initial trial(s){pref}{extra}"
    if node == "generate_guidelines":
        got = "new guidelines" if update.get("guidelines") else "no guidelines"
        return f"iteration {update.get('iteration')}: {got}{extra}"
    if node == "propose_trials":
        rejected = sum(t.status == "rejected" for t in trials)
        return f"  proposed {len(update.get('pending') or [])} new, {rejected} rejected{extra}"
    if node == "execute_trials":
        scores = [t.score for t in trials if t.score is not None]
        failed = sum(t.status == "failed" for t in trials)
        top = f", best of batch {max(scores):.4g}" if scores else ""
        return f"  executed {len(trials)} ({failed} failed){top}"
    if node == "check_stop":
        return f"  stop: {update['stop_reason']}" if update.get("stop_reason") else "  go on"
    if node == "final_evaluation":
        test = update.get("test_result") or {}
        score = test.get("score")
        got = f"test score {score:.4g}" if score is not None else "no test score"
        return f"final evaluation: {got}; report in {(update.get('report') or {}).get('markdown')}"
    return node
