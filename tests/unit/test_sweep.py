"""The exhaustive optimum: the streamed feasible set, and each executor's vectorised sweep against
running every feasible configuration through the executor itself (what the sweep stands for)."""

from __future__ import annotations

import csv
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agenttts.environment import replay_grid
from agenttts.environment.executor import HasOptimum
from agenttts.environment.registry import make_executor, run_batch
from agenttts.environment.space import config_cost, iter_feasible
from agenttts.environment.sweep import feasible_chunks
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task


def brute_force(task: Task, tolerance: float) -> tuple[float, str, int, int]:
    """Best (score, cheaper, first in order) over every feasible configuration run one by one,
    and how many reach the best minus `tolerance`."""
    configs = list(iter_feasible(task))
    results = run_batch(task, configs, "train")
    scored = [
        (r.metrics[task.main_metric], -config_cost(task, r.config), -i, r.config)
        for i, r in enumerate(results)
        if r.ok
    ]
    best = max(scored, key=lambda s: s[:3])
    near = sum(1 for s in scored if s[0] >= best[0] - tolerance - 1e-12)
    return best[0], best[3].short(), len(configs), near


def swept(task: Task, tolerance: float) -> tuple[float, str, int, int]:
    ex = make_executor(task)
    assert isinstance(ex, HasOptimum)
    best = ex.optimum("train")
    return best.score, best.config.short(), best.feasible, ex.count_at_least(best.score - tolerance)


def test_chunks_hold_the_feasible_set_in_order_and_bounded(tmp_path):
    task = load_task(write_grid_task(tmp_path, budget=600))
    expected = list(iter_feasible(task))
    chunks = list(feasible_chunks(task, chunk=40))
    assert len(chunks) > 3 and max(len(c) for c in chunks) <= 40  # 32 options a stage
    got = [c.config(task, i) for c in chunks for i in range(len(c))]
    assert got == expected
    costs = [float(x) for c in chunks for x in c.cost]
    assert costs == [config_cost(task, c) for c in expected]
    only = [c.config(task, i) for c in feasible_chunks(task, models=[1, 0]) for i in range(len(c))]
    assert only == [
        c for c in expected if (c["retrieval"].model, c["qa"].model) == ("r-72b", "qa-3b")
    ]


def sparse_grid(folder: Path, seed: int) -> Path:
    """A table with holes: nearest rows answer, ties between rows equally far (S=2 between 1 and
    4), rows for one split and for any, rows over the budget, rows without the main metric."""
    task = write_grid_task(folder, budget=700)
    rnd = random.Random(seed)
    rows = []
    for rm in ("r-7b", "r-72b"):
        for rs_ in (1, 4, 16):
            for qm in ("qa-3b", "qa-70b"):
                for qs in (1, 4, 9, 16, 40):
                    split = rnd.choice(["", "", "train", "test"])
                    em = "" if rnd.random() < 0.05 else round(rnd.random() * 50) / 50
                    rows.append([rm, rs_, qm, qs, split, em, 0.5])
    with (folder / "grid.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["retrieval.model", "retrieval.samples", "qa.model", "qa.samples", "split",
                    "em", "f1"])  # fmt: skip
        w.writerows(rows)
    return task


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("box_limit", [replay_grid.BOX_LIMIT, 1])  # distance transform, brute
def test_grid_optimum_is_what_running_every_configuration_finds(
    tmp_path, seed, box_limit, monkeypatch
):
    monkeypatch.setattr(replay_grid, "BOX_LIMIT", box_limit)
    task = load_task(sparse_grid(tmp_path, seed))
    assert swept(task, 0.02) == brute_force(task, 0.02)


def test_grid_optimum_of_the_full_table(tmp_path):
    task = load_task(write_grid_task(tmp_path, budget=900))
    assert swept(task, 0.0) == brute_force(task, 0.0)


def test_samples_optimum_is_what_running_every_configuration_finds(tmp_path):
    rnd = random.Random(5)
    rows: list[dict[str, Any]] = []
    for m, n_s in (("m1", 12), ("m2", 7)):  # m2 has too few samples for S > 7: those fail
        for q in range(9):
            for s in range(n_s):
                answer = rnd.choice(["a", "b", "c"])
                rows.append({"model": m, "qid": q, "sample": s, "answer": answer,
                             "gold": "a", "tokens": 5})  # fmt: skip
    (tmp_path / "store.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    stage = {"name": "qa", "prompt_tokens": 256, "gen_tokens": 64, "max_samples": 12,
             "models": [{"name": "m1", "params": 3e9}, {"name": "m2", "params": 8e9}]}  # fmt: skip
    spec = {"name": "s", "budget": 50, "stages": [stage], "metrics": ["accuracy"],
            "main_metric": "accuracy", "data": {"train_size": 6, "test_size": 3, "seed": 1},
            "environment": {"kind": "samples", "settings": {"store": "store.jsonl"}}}  # fmt: skip
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(spec))
    task = load_task(tmp_path / "task.yaml")
    assert swept(task, 0.1) == brute_force(task, 0.1)


def test_the_grid_index_is_built_once_per_table_version(tmp_path):
    task = load_task(write_grid_task(tmp_path))
    first, second = make_executor(task), make_executor(task)
    assert first.table is second.table  # type: ignore[attr-defined]
    table = tmp_path / "grid.csv"
    st = table.stat()
    os.utime(table, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # edited: indexed again
    assert make_executor(task).table is not first.table  # type: ignore[attr-defined]
