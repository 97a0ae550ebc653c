"""The bench's frontier mode on a tiny simulated task: grid, exhaustive within its cap, reaches
every budget's optimum both ways, and the cost to them all is read off each side's own runs."""

from __future__ import annotations

import sys
from pathlib import Path

from agenttts.search_bench.frontier import run_frontier_bench, write_frontier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_bench import settings


def test_shared_and_separate_searches_reach_every_budget_s_optimum(tmp_path):
    s = settings(tmp_path, methods=["grid"], seeds=[0])
    result = run_frontier_bench(s, [0.5, 1.0])
    (task,) = result["tasks"].values()
    assert task["budgets"] == [25.0, 50.0]
    shared, apart = result["runs"]
    assert (shared["mode"], apart["mode"]) == ("shared", "separate")
    assert len(shared["threads"]) == 1 and len(apart["threads"]) == 2
    for run in (shared, apart):
        assert all(h is not None for h in run["hits"].values())  # grid: exhaustive
    # the shared search pays once up to its last hit; the separate ones each up to theirs
    assert shared["cost_to_all"] == max(shared["costs"].values())
    assert apart["cost_to_all"] == sum(apart["costs"].values())
    (summary,) = result["summary"]
    assert summary["all_shared"] == summary["all_separate"] == 1
    assert summary["times_cheaper"] == apart["cost_to_all"] / shared["cost_to_all"]
    paths = write_frontier(result, s.out_dir, "agenttts bench --frontier 0.5,1")
    text = Path(paths["markdown"]).read_text()
    assert "`agenttts bench --frontier 0.5,1`" in text and "| sim-tiny | grid | 25, 50 |" in text
    assert Path(result["plots"]["sim-tiny"]).read_bytes()[:4] == b"\x89PNG"
