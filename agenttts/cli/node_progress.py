"""The progress lines `search` and `demo` print while a search runs: one as each node starts, one as
it ends saying what it did and how long it took (a live node can run for minutes). Text for
people watching a terminal, so it lives with the commands; the runner only reports the events
(`run_search(on_start=, on_event=)`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from agenttts.archive import Archive


class NodeProgress:
    """What `search` and `demo` print: a timestamped line as each node starts, and one as it
    ends saying what it did and how long it took (a live node can run for minutes)."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write
        self.started: dict[str, float] = {}

    @staticmethod
    def _stamp() -> str:
        return time.strftime("%H:%M:%S")

    def start(self, node: str, state: Mapping[str, Any]) -> None:
        self.started[node] = time.monotonic()
        self.write(f"{self._stamp()} > {describe_start(node, state)}")

    def end(self, node: str, update: Mapping[str, Any]) -> None:
        began = self.started.pop(node, None)
        took = "" if began is None else f" ({time.monotonic() - began:.1f} s)"
        self.write(f"{self._stamp()}   {describe_update(node, update)}{took}")


def describe_start(node: str, state: Mapping[str, Any]) -> str:
    """What a node is about to do, from the state it starts on."""
    iteration = int(state.get("iteration") or 0)
    if node == "init_trials":
        return "init: the initial trials (every model of each stage)"
    if node == "init_preferences":
        return "init: the model preferences"
    if node == "generate_guidelines":
        return f"iteration {iteration + 1}: guidelines"
    if node == "propose_trials":
        return f"iteration {iteration}: proposals"
    if node == "execute_trials":
        pending = state.get("pending") or []
        racing = sum(1 for p in pending if not p.get("done"))
        if any(p.get("prior") for p in pending):  # a race goes on (agenttts.racing)
            return f"iteration {iteration}: racing {racing} of {len(pending)} on more items"
        return f"iteration {iteration}: running {len(pending)} trial(s)"
    if node == "check_stop":
        return "stop check"
    if node == "final_evaluation":
        return "final evaluation: the best configuration on the test split, then the report"
    return node


def describe_update(node: str, update: Mapping[str, Any]) -> str:
    """One progress line per node, for people watching a run."""
    trials = Archive.from_state(update)
    failures = len(update.get("agent_failures") or [])
    extra = f", {failures} agent failure(s) recorded" if failures else ""
    if node == "init_trials":
        failed = len(trials.failed())
        n = len(trials.executed())
        return f"init: {n} initial trial(s) ({failed} failed{_items_failed(trials)}){_free(trials)}"
    if node == "init_preferences":
        prefs = update.get("preferences") or {}
        got = ", ".join(f"{k}={v}" for k, v in prefs.items()) if prefs else "none stated"
        return f"init: preferences {got}{extra}"
    if node == "generate_guidelines":
        got = "new guidelines" if update.get("guidelines") else "no guidelines"
        return f"iteration {update.get('iteration')}: {got}{extra}"
    if node == "propose_trials":
        rejected = len(trials.rejected())
        return f"proposed {len(update.get('pending') or [])} new, {rejected} rejected{extra}"
    if node == "execute_trials":
        if not trials and update.get("pending"):
            on = sum(1 for p in update["pending"] if not p.get("done"))
            return f"rung done: {on} of {len(update['pending'])} stay in the race"
        scores = trials.full().scores()
        failed = len(trials.failed())
        top = f", best of batch {max(scores):.4g}" if scores else ""
        partial = len(trials.scored()) - len(trials.full().scored())
        dropped = f", {partial} dropped from the race" if partial else ""
        lost = f"{failed} failed{_items_failed(trials)}{dropped}"
        return f"executed {len(trials.executed())} ({lost}){top}{_free(trials)}"
    if node == "check_stop":
        return f"stop: {update['stop_reason']}" if update.get("stop_reason") else "go on"
    if node == "final_evaluation":
        test = update.get("test_result") or {}
        score = test.get("score")
        got = f"test score {score:.4g}" if score is not None else "no test score"
        return f"final evaluation: {got}; report in {(update.get('report') or {}).get('markdown')}"
    return node


def _items_failed(trials: Archive) -> str:
    """ ", N with failed items" for trials that ran but lost items (scored 0): not silent."""
    lossy = sum(1 for t in trials.executed() if t.status == "ok" and t.details.get("failed_items"))
    return f", {lossy} with failed or timed-out items" if lossy else ""


def _free(trials: Archive) -> str:
    """How many more configurations the step scored free (`agenttts.derived`)."""
    derived = len(trials.derived())
    return f", {derived} more scored free" if derived else ""
