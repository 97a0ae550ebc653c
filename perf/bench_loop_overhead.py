"""The search loop's own cost per trial (graph + SQLite checkpoint, durability "sync") beside the
replay executor's time for the same trials and the proposer's time, from one run.

    python perf/bench_loop_overhead.py [--iterations 20] [--batch-size 5] [--proposer insight]

Runs on the grid-replay test task (written to a temporary folder), prints a table and exits.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "graph"))

from grid_task import write_grid_task  # noqa: E402

from agenttts.environment import registry  # noqa: E402
from agenttts.graph.runner import run_search  # noqa: E402
from agenttts.nodes import common, final_evaluation  # noqa: E402


class Timed:
    """Wraps a callable (or every public method of a proposer) and adds up its wall time."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu = 0.0

    def wrap(self, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.cpu += time.process_time() - cpu

        return timed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=5)
    ap.add_argument("--proposer", default="insight")
    args = ap.parse_args()

    executor, proposer = Timed(), Timed()
    # Nodes and the racing engine run every batch through `registry.run_batch`: the one seam.
    run_batch, proposer_for = registry.run_batch, common.proposer_for
    registry.run_batch = executor.wrap(run_batch)

    def timed_proposer(settings: Any) -> Any:
        p = proposer_for(settings)
        for name in ("summarize_preferences", "guidelines", "propose"):
            setattr(p, name, proposer.wrap(getattr(p, name)))
        return p

    common.proposer_for = timed_proposer
    report = Timed()
    final_evaluation.write_report = report.wrap(final_evaluation.write_report)
    with tempfile.TemporaryDirectory() as tmp:
        task = write_grid_task(Path(tmp) / "task")
        db = Path(tmp) / "bench.sqlite"
        settings = {
            "proposer": args.proposer,
            "batch_size": args.batch_size,
            "max_iterations": args.iterations,
            "patience": None,
            "report_dir": str(Path(tmp) / "reports"),
        }
        start, cpu = time.perf_counter(), time.process_time()
        out = run_search(str(task), "bench", db, settings)
        total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
        con = sqlite3.connect(db)
        checkpoints = con.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        con.close()
        db_bytes = db.stat().st_size + sum(
            p.stat().st_size for p in Path(tmp).glob("bench.sqlite-*")
        )

    trials = out.trials.executed()
    n = len(trials) + (1 if out.values.get("test_result") else 0)  # the test run is a trial too
    loop = total - executor.seconds - proposer.seconds - report.seconds
    loop_cpu = total_cpu - executor.cpu - proposer.cpu - report.cpu
    rows = [
        ("whole run (in process)", total, total_cpu),
        ("replay executor (same trials)", executor.seconds, executor.cpu),
        (f"proposer {args.proposer!r}", proposer.seconds, proposer.cpu),
        ("report (JSON, Markdown, PNG)", report.seconds, report.cpu),
        ("loop overhead: graph + checkpoints", loop, loop_cpu),
    ]
    print(
        f"loop overhead — grid replay task, {args.proposer}, {out.values.get('iteration')} "
        f"iterations, {n} trials, {checkpoints} checkpoints (durability=sync), "
        f"db {db_bytes / 1024:.0f} KiB; stop: {out.values.get('stop_reason')}"
    )
    print(f"{'part':<44} {'wall s':>8} {'ms/trial':>9} {'cpu s':>8} {'cpu ms/trial':>13}")
    for name, seconds, cpu_s in rows:
        per, per_cpu = 1000 * seconds / max(n, 1), 1000 * cpu_s / max(n, 1)
        print(f"{name:<44} {seconds:>8.3f} {per:>9.2f} {cpu_s:>8.3f} {per_cpu:>13.2f}")
    per_ckpt, per_ckpt_cpu = (
        1000 * loop / max(checkpoints, 1),
        1000 * loop_cpu / max(checkpoints, 1),
    )
    label = "loop overhead per checkpoint (ms)"
    print(f"{label:<44} {'':>8} {per_ckpt:>9.2f} {'':>8} {per_ckpt_cpu:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
