"""`agenttts show ID --db PATH`: one thread's archive, preferences, guidelines and outcome;
`show ID TRIAL`: one trial's items (prediction, gold answer, scores, stage outputs)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agenttts.cli.common import plain_table
from agenttts.cli.search import DB_HELP, DEFAULT_DB
from agenttts.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("show", help="print a search thread's archive and guidelines")
    p.add_argument("thread", metavar="ID", help="thread id (see `agenttts runs`)")
    p.add_argument(
        "trial",
        metavar="TRIAL",
        nargs="?",
        type=int,
        help="a trial id: list its items (prediction, gold answer, scores, each stage's "
        "samples), replayed from the sample cache with no endpoint call (live pipelines)",
    )
    p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    p.add_argument("--json", action="store_true", help="the whole thread state as JSON")
    p.set_defaults(func=cmd_show)


def _task(ref: Any, *, check: bool = False) -> Any:
    """The thread's task, or None when its file can no longer be read (the archive still shows)."""
    from agenttts.environment.task_loading import load_task

    try:
        return load_task(str(ref), check_environment=check)
    except InputError:
        if check:
            raise
        return None


def show_trial(values: dict[str, Any], trial_id: int) -> int:
    """One trial's items, replayed: the same configuration on the same items, from the cache only
    (the archive keeps no predictions; the sample cache holds every sample the trial drew)."""
    from agenttts.archive import Archive
    from agenttts.cli.evaluate import items_line, items_text, record_items
    from agenttts.environment.registry import run_batch

    archive = Archive.from_state(values)
    if not 0 <= trial_id < len(archive):
        raise InputError(f"no trial {trial_id} (the thread has trials 0..{len(archive) - 1})")
    trial = archive[trial_id]
    if trial.status == "rejected":
        raise InputError(
            f"trial {trial_id} was rejected by the screen ({trial.error}); it never ran"
        )
    from agenttts.progress import set_quiet

    set_quiet(True)  # a replay from the cache: no progress bar over its items
    task = _task(values["task"], check=True)
    overrides = {**record_items(task), "cache_only": True}
    (result,) = run_batch(task, [trial.config], trial.split, items=trial.item_ids, **overrides)
    score = "-" if trial.score is None else f"{trial.score:.4g}"
    print(
        f"trial {trial_id}: {trial.config.short()} on the {trial.split} split (score {score}), "
        "replayed from the sample cache"
    )
    if result.error:
        print(f"error: {result.error}")
        return 1
    print(items_line(result))
    print()
    print(items_text(result.details.get("records") or []))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from agenttts import frontier
    from agenttts.archive import Archive
    from agenttts.frontier_report import FRONT_HEADER, UNIT, front_rows, frontier_summary
    from agenttts.graph.runner import read_thread, status_of, stop_error
    from agenttts.report import (
        ARCHIVE_HEADER,
        ARCHIVE_LEGEND,
        archive_rows,
        best_noise,
        derived_line,
        failed_items_note,
        search_cost,
        search_cost_line,
    )

    snap = read_thread(args.db, args.thread)
    v = snap.values
    if args.trial is not None:
        return show_trial(dict(v), args.trial)
    if args.json:
        status = {"status": status_of(snap), "error": stop_error(snap), "next": list(snap.next)}
        # every trial with every field: derived ones are compact in the state, not for readers
        trials = [t.model_dump(mode="json") for t in Archive.from_state(v)]
        print(json.dumps({**status, **v, "archive": trials}, indent=2))
        return 0
    archive = Archive.from_state(v)
    task = _task(v.get("task"))
    metric = task.main_metric if task is not None else None
    settings = v.get("settings") or {}
    print(f"thread {args.thread}: task {v.get('task')}, proposer {settings.get('proposer')}")
    print(f"status: {status_of(snap)}; iteration {v.get('iteration', 0)}")
    if v.get("stop_reason"):
        print(f"stop reason: {v['stop_reason']}")
    if stop_error(snap):
        print(f"stopped by: {stop_error(snap)}")
    print()
    if archive:
        print(plain_table(ARCHIVE_HEADER, archive_rows(archive, metric)))
        print(ARCHIVE_LEGEND)
    else:
        print("(no trials yet)")
    best = archive.best()
    if best is not None:
        print(f"\nbest: trial {best.trial_id} {best.config.short()} score {best.score:.4g}")
        noise = best_noise(archive, metric)
        if noise:
            close = noise["within_noise"]
            print(
                f"  ±{noise['se']:.2g} over {noise['items']} items; "
                + (
                    f"within noise of it: trial(s) {', '.join(map(str, close))}"
                    if close
                    else "no other trial is within noise of it"
                )
            )
    front = frontier_summary(v, task)
    if front["front"]:
        several = len(front["budgets"]) > 1
        budgets = ", ".join(frontier.label(b) for b in front["budgets"])
        print(f"\nthe front (cost in {UNIT})" + (f"; budgets {budgets}:" if several else ":"))
        print(plain_table(FRONT_HEADER, front_rows(front)))
    if derived_line(archive):
        print(derived_line(archive))
    if archive:
        print(search_cost_line(search_cost(v)))
    test = v.get("test_result")
    if test:
        score = test.get("score")
        failed = failed_items_note(test.get("details") or {})
        print(
            f"test: {'-' if score is None else f'{score:.4g}'} {test.get('error') or ''}".rstrip()
            + (f" ({failed})" if failed else "")
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
    thoughts = v.get("agent_reasoning") or []
    if thoughts:
        print(f"\nthe agent's reasoning ({len(thoughts)} answers; in full with --json):")
        for r in thoughts[-3:]:
            text = " ".join(str(r["reasoning"]).split())
            print(f"  iteration {r['iteration']} {r['node']}: {text[:160]}")
    if v.get("report"):
        print(f"\nreport: {v['report'].get('markdown')}")
    return 0
