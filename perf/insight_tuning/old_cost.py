"""Search cost to the optimum of a bench made by an older agenttts (before trials recorded their
search cost), in today's unit: the sum over executed trials, up to the first within the tolerance
of the optimum, of the configuration's budget units x items evaluated (every trial evaluated the
whole training split then, with no cache), as a multiple of one full evaluation of the optimum.

Two steps, because the old checkpoints are read with the old code:

    # 1. with the old checkout on the path: each thread's executed trials -> JSON
    PYTHONPATH=OLD_PKG python perf/insight_tuning/old_cost.py dump OLD.sqlite trials.json
    # 2. with this checkout: the old runs' cost beside a new bench.json's, per task
    .venv/bin/python perf/insight_tuning/old_cost.py compare trials.json NEW/bench.json
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
from pathlib import Path
from typing import Any


def dump(db: str, out: str) -> None:
    """Every thread's last state's executed trials (config, score), in trial order."""
    from agenttts.graph.graph import make_graph  # the old code's, from PYTHONPATH
    from agenttts.graph.runner import open_checkpointer, thread_config

    with sqlite3.connect(db) as con:
        threads = [r[0] for r in con.execute("SELECT DISTINCT thread_id FROM checkpoints")]
    runs: dict[str, list[dict[str, Any]]] = {}
    with open_checkpointer(db, create=False) as saver:
        graph = make_graph(saver)
        for thread in sorted(threads):
            archive = graph.get_state(thread_config(thread)).values.get("archive") or []
            done = [
                t for t in archive if t.get("status") != "rejected" and t.get("phase") != "test"
            ]
            done.sort(key=lambda t: t["trial_id"])
            runs[thread] = [{"config": t["config"], "score": t.get("score")} for t in done]
    Path(out).write_text(json.dumps(runs))


def compare(trials_json: str, bench_json: str, cap: int = 100) -> None:
    """Median trials and cost multiple to the optimum per task: old runs (first `cap` trials,
    as today's bench cuts them) against the insight runs of a new bench."""
    from agenttts.environment.space import Config, config_cost
    from agenttts.environment.task_loading import load_task
    from agenttts.search_bench.harness import reach

    bench = json.loads(Path(bench_json).read_text())
    tol = bench["tolerance"]
    old = json.loads(Path(trials_json).read_text())
    print(
        "| task | old median trials | old median cost | new median trials | new median cost "
        "| new/old cost |"
    )
    print("|---|---|---|---|---|---|")
    every: dict[str, list[float]] = {"oh": [], "oc": [], "nh": [], "nc": []}
    for name, info in bench["tasks"].items():
        task = load_task(info["file"])
        full = config_cost(task, Config.model_validate(info["config"]))
        hits: list[float] = []
        costs: list[float] = []
        for thread, trials in old.items():
            if not thread.startswith(f"{name}:insight:"):
                continue
            trials = trials[:cap]
            curve: list[float | None] = []
            for t in trials:
                s = t["score"]
                prev = curve[-1] if curve else None
                curve.append(s if prev is None or (s is not None and s > prev) else prev)
            hit = reach(curve, info["score"], tol)
            hits.append(hit if hit is not None else float("inf"))
            costs.append(
                sum(config_cost(task, Config.model_validate(t["config"])) for t in trials[:hit])
                / full
                if hit is not None
                else float("inf")
            )
        new = [r for r in bench["runs"] if r["task"] == name and r["method"] == "insight"]
        new_hits = [r["trials_to_optimum"] or float("inf") for r in new]
        new_costs = [r["cost_multiple_to_optimum"] or float("inf") for r in new]
        runs = (hits, costs, new_hits, new_costs)
        for key, values in zip(("oh", "oc", "nh", "nc"), runs, strict=True):
            every[key] += values
        oc, nc = statistics.median(costs), statistics.median(new_costs)
        print(
            f"| {name} | {statistics.median(hits):g} | {oc:.1f}x | "
            f"{statistics.median(new_hits):g} | {nc:.1f}x | {nc / oc:.0%} |"
        )
    m = {k: statistics.median(v) for k, v in every.items()}
    print(
        f"| all runs | {m['oh']:g} | {m['oc']:.1f}x | {m['nh']:g} | {m['nc']:.1f}x "
        f"| {m['nc'] / m['oc']:.0%} |"
    )


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2], sys.argv[3])
    else:
        compare(sys.argv[2], sys.argv[3])
