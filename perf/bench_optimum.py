"""Exhaustive optimum of large spaces, and the grid executor's index built once per table.

Writes three-stage tasks into a temporary folder, each stage offering `--models` models at up to
`--samples` samples, with the budget set so that about `--configs` configurations are feasible:

- a simulated task: the optimum is a vectorised sweep of its surface;
- a grid-replay task over a sparse table (every model combination at S = 1, 2, 4, ... per stage):
  every feasible configuration is answered by its nearest row, as a trial would be;
- a grid-replay task over a dense table (`--dense-samples` per stage, two models: 262,144 rows
  by default), to time building the table's index against a batch answered from the cached one.

For each optimum it prints the wall time, configurations per second and the peak of memory
allocated during the sweep (tracemalloc: numpy reports its arrays there), then checks the grid
optimum against a handful of its configurations run through the executor. Prints a table.

    python perf/bench_optimum.py [--configs 1e8] [--models 4] [--samples 128]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from agenttts.environment.executor import HasOptimum
from agenttts.environment.registry import make_executor, run_batch
from agenttts.environment.replay_grid import GridTable, read_table
from agenttts.environment.space import count_feasible, sample_feasible, seeded_rng
from agenttts.environment.task_loading import load_task

T = TypeVar("T")
STAGES = ("plan", "act", "check")


def task_spec(kind: str, models: int, samples: int, budget: float, **env: Any) -> dict[str, Any]:
    params = [3e9 * (2.5**i) for i in range(models)]
    return {
        "name": f"large-{kind}",
        "budget": budget,
        "metrics": ["score"],
        "main_metric": "score",
        "data": {"train_size": 200, "test_size": 200, "seed": 7},
        "environment": {"kind": kind, "settings": env},
        "stages": [
            {
                "name": name,
                "prompt_tokens": 512,
                "gen_tokens": 128,
                "max_samples": samples,
                "models": [{"name": f"m{i}", "params": p} for i, p in enumerate(params)],
            }
            for name in STAGES
        ],
    }


def write_task(folder: Path, spec: dict[str, Any]) -> Path:
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def budget_for(folder: Path, models: int, samples: int, configs: float) -> float:
    """The budget whose feasible set is closest to `configs` (bisection on the exact count)."""
    task = load_task(write_task(folder, task_spec("simulated", models, samples, 1e12)))

    def count(budget: float) -> int:
        return count_feasible(task.model_copy(update={"budget": budget}))

    low, high = 0.0, 1.0
    while count(high) < configs:
        low, high = high, high * 2
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if count(mid) < configs else (low, mid)
    return high


def grid_table(path: Path, models: int, samples: list[int]) -> int:
    """One row per model combination and sample counts in `samples` (per stage), train split."""
    n = 0
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"{s}.{c}" for s in STAGES for c in ("model", "samples")] + ["score"])
        for a in range(models):
            for b in range(models):
                for c in range(models):
                    for sa in samples:
                        for sb in samples:
                            for sc in samples:
                                q = (a * 0.05 + b * 0.03 + c * 0.02) + 0.1 * math.log2(sa)
                                q += 0.07 * math.log2(sb) - 0.004 * sc - 0.001 * sa * sb / 64
                                w.writerow([f"m{a}", sa, f"m{b}", sb, f"m{c}", sc, round(q, 3)])
                                n += 1
    return n


def measured(fn: Callable[[], T], *, trace: bool = True) -> tuple[T, float, float, float]:
    """(result, wall s, CPU s, peak MiB allocated while it ran). Tracing memory slows Python-level
    loops a lot (not numpy's): `trace=False` for those."""
    if trace:
        tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        out = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else math.nan
    finally:
        if trace:
            tracemalloc.stop()
    return out, wall, cpu, peak


def optimum_row(label: str, task_path: Path) -> tuple[list[str], Any]:
    task = load_task(task_path)
    executor = make_executor(task)
    assert isinstance(executor, HasOptimum)
    best, wall, cpu, peak = measured(lambda: executor.optimum("train"))
    row = [
        label,
        f"{best.feasible:,}",
        f"{wall:.1f} s",
        f"{cpu:.1f} s",
        f"{best.feasible / cpu / 1e6:.2f} M/s",
        f"{peak:.0f} MiB",
        f"{best.score:.4g} at {best.config.short()}",
    ]
    return row, (task, best)


def check_grid(task: Any, best: Any, n: int = 2000) -> str:
    """The swept optimum is a real answer, and no sampled feasible configuration beats it."""
    [own] = run_batch(task, [best.config], "train")
    assert own.ok and own.metrics["score"] == best.score, (own, best)
    sampled = sample_feasible(task, seeded_rng("perf-optimum"), n)
    results = run_batch(task, sampled, "train")
    top = max(r.metrics["score"] for r in results if r.ok)
    assert top <= best.score, (top, best.score)
    return f"ok: the optimum replays as {own.metrics['score']:.4g}; {n} sampled configs <= it"


def index_rows(folder: Path, dense: int) -> list[list[str]]:
    """The dense table: building its index (what every batch paid before it was cached) against
    a 10-configuration batch, first (read + index) and then from the cache."""
    spec = task_spec("grid", 2, dense, 1e9, table="dense.csv")
    rows = grid_table(folder / "dense.csv", 2, list(range(1, dense + 1)))
    task = load_task(write_task(folder, {**spec, "name": "dense-grid"}))
    raw = read_table(folder / "dense.csv")
    build = [measured(lambda: GridTable.build(raw, task.stage_names, task.metrics), trace=False)]
    batch = sample_feasible(task, seeded_rng("perf-batch"), 10)
    later = [measured(lambda: run_batch(task, batch, "train"), trace=False) for _ in range(5)]
    b, c = min(build, key=lambda m: m[2]), min(later, key=lambda m: m[2])
    return [
        [f"grid index, {rows:,} rows", "built", f"{b[1]:.2f} s", f"{b[2]:.2f} s", "", "",
         "what every batch paid before the cache"],
        [f"grid batch of 10, {rows:,} rows", "10", f"{c[1] * 1e3:.1f} ms", f"{c[2] * 1e3:.1f} ms",
         "", "", "index cached (load_task built it); best of 5"],
    ]  # fmt: skip


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", type=float, default=1e8, help="feasible configurations wanted")
    ap.add_argument("--models", type=int, default=4, help="models per stage")
    ap.add_argument("--samples", type=int, default=128, help="max samples per stage")
    ap.add_argument("--dense-samples", type=int, default=32, help="S per stage, dense grid")
    args = ap.parse_args()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        budget = budget_for(folder, args.models, args.samples, args.configs)
        print(f"budget {budget:.4g} units: {args.models} models x S<={args.samples} per stage",
              file=sys.stderr)  # fmt: skip
        sim = write_task(folder, task_spec("simulated", args.models, args.samples, budget))
        rows.append(optimum_row("simulated optimum", sim)[0])
        powers = [2**i for i in range(int(math.log2(args.samples)) + 1)]
        n_rows = grid_table(folder / "sparse.csv", args.models, powers)
        spec = task_spec("grid", args.models, args.samples, budget, table="sparse.csv")
        grid = write_task(folder, spec)
        row, (task, best) = optimum_row(f"grid optimum, {n_rows:,} rows", grid)
        rows.append(row)
        rows += index_rows(folder, args.dense_samples)
        note = check_grid(task, best)
    header = ["what", "configurations", "wall", "CPU", "rate (CPU)", "peak memory", "result"]
    print(table(header, rows))
    print(f"grid optimum check: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
