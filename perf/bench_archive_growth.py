"""Archive growth: checkpoint bytes and loop time per trial as a search grows, for the storage
layout agenttts uses beside the two before it, in one run.

    python perf/bench_archive_growth.py [--trials 100 1000 10000] [--batch-size 10]
                                        [--task sim-2wiki] [--layouts bounded delta whole-list]
                                        [--whole-list-max 1000]

Layouts: `bounded`, the product: the growing lists are LangGraph delta channels and the CLI's
checkpointers keep no whole-list snapshot (`storage.GrowingLists`); `delta`, the layout before it:
the same channels with LangGraph's own snapshots of the whole list every `SNAPSHOT_EVERY` appends
or 5,000 supersteps; `whole-list`, the first one: every checkpoint after a change stores the
whole list (`tests/fixtures/graph/whole_list_layout.py`). The older two exist only here and in
the tests; they are no product setting. `whole-list` grows quadratically, so it runs only up to
`--whole-list-max` trials.

Each run is a fresh SQLite file and thread: the random proposer (cheap, so the loop's own cost
shows) on a simulated task, `max_trials` N, patience off, free evaluations off (N executed trials),
durability "sync" as the CLI runs it, batches of 10 as the CLI's default. Columns: checkpoint bytes
per trial (the thread's checkpoint, metadata and write blobs), the largest single checkpoint (blob
and metadata: what one step stored), the file size, the loop's wall and CPU ms per trial (the whole
run minus the one-time report), and the ms one `get_state()` of the finished thread takes (a resume,
`runs` or `show` reads it so).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "graph"))

from whole_list_layout import whole_list

from agenttts.graph import runner, storage
from agenttts.graph.graph import make_graph
from agenttts.graph.storage import open_checkpointer
from agenttts.nodes import final_evaluation


def as_is(graph: Any) -> Any:
    return graph


#: layout -> (how the graph is changed, whether the checkpointer drops whole-list snapshots)
LAYOUTS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "bounded": (as_is, True),
    "delta": (as_is, False),
    "whole-list": (whole_list, False),
}


def graph_maker(layout: str) -> Callable[..., Any]:
    def make(*args: Any, **kwargs: Any) -> Any:
        return LAYOUTS[layout][0](make_graph(*args, **kwargs))

    return make


@dataclass
class Row:
    layout: str
    trials: int
    blob_bytes: int
    largest_bytes: int
    file_bytes: int
    wall_s: float
    cpu_s: float
    read_s: float


class Timed:
    """Adds up the wall and CPU time of the calls to a wrapped function."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.wall, self.cpu = fn, 0.0, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.wall += time.perf_counter() - start
            self.cpu += time.process_time() - cpu


def thread_bytes(db: Path, thread: str) -> tuple[int, int]:
    """What the thread's rows hold (checkpoint and metadata blobs plus pending-write values), and
    the largest checkpoint (blob and metadata)."""
    con = sqlite3.connect(db)
    try:
        ckpt, largest = con.execute(
            "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0), "
            "COALESCE(MAX(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints "
            "WHERE thread_id = ?",
            (thread,),
        ).fetchone()
        writes = con.execute(
            "SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE thread_id = ?", (thread,)
        ).fetchone()[0]
    finally:
        con.close()
    return int(ckpt) + int(writes), int(largest)


def one_run(layout: str, n: int, task: str, batch: int, folder: Path) -> Row:
    db = folder / f"{layout}-{n}.sqlite"
    settings = {
        "proposer": "random",
        "batch_size": batch,
        "max_trials": n,
        "max_iterations": 10**6,
        "patience": None,
        # N executed trials: free evaluations would exhaust the space of a 10,000-trial run before
        # N (random never asks for an evaluated configuration); derived records are compact
        "free_evaluations": False,
        "report_dir": str(folder / "reports"),
    }
    report = Timed(final_evaluation.write_report)
    final_evaluation.write_report = report
    runner.make_graph = graph_maker(layout)
    growing = storage.GROWING
    if not LAYOUTS[layout][1]:
        storage.GROWING = frozenset()  # the checkpointer drops nothing: LangGraph's own storage
    try:
        start, cpu = time.perf_counter(), time.process_time()
        out = runner.run_search(task, "bench", db, settings)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        with open_checkpointer(db, create=False) as saver:
            graph = graph_maker(layout)(saver)
            read = time.perf_counter()
            snap = graph.get_state(runner.thread_config("bench"))
            read = time.perf_counter() - read
    finally:
        final_evaluation.write_report = report.fn
        runner.make_graph = make_graph
        storage.GROWING = growing
    trials = len(out.trials.executed())
    assert len(snap.values["archive"]) == len(out.values["archive"]) and trials >= n
    files = sum(p.stat().st_size for p in folder.glob(f"{db.name}*"))
    return Row(
        layout,
        trials,
        *thread_bytes(db, "bench"),
        files,
        wall - report.wall,
        cpu - report.cpu,
        read,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--task", default="sim-2wiki")
    ap.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS))
    ap.add_argument("--whole-list-max", type=int, default=1000)
    args = ap.parse_args()

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        one_run("bounded", args.batch_size, args.task, args.batch_size, Path(tmp))  # imports
        for n in args.trials:
            for layout in args.layouts:
                if layout == "whole-list" and n > args.whole_list_max:
                    continue
                folder = Path(tmp) / f"{layout}-{n}"
                folder.mkdir()
                rows.append(one_run(layout, n, args.task, args.batch_size, folder))
                print(f"  ... {layout} {n} trials done", file=sys.stderr, flush=True)

    print(
        f"archive growth — {args.task}, random proposer, batch {args.batch_size}, patience off, "
        "SQLite, durability=sync (loop: whole run minus the report)"
    )
    if any(n > args.whole_list_max for n in args.trials) and "whole-list" in args.layouts:
        print(f"(whole-list: up to {args.whole_list_max} trials; it grows quadratically)")
    head = (
        f"{'trials':>6}  {'layout':<10} {'ckpt bytes/trial':>16} {'largest ckpt KB':>15} "
        f"{'db MiB':>8} {'wall ms/trial':>13} {'cpu ms/trial':>12} {'get_state ms':>12}"
    )
    print(head)
    for r in rows:
        print(
            f"{r.trials:>6}  {r.layout:<10} {r.blob_bytes / r.trials:>16,.0f} "
            f"{r.largest_bytes / 1024:>15,.1f} {r.file_bytes / 2**20:>8.1f} "
            f"{1000 * r.wall_s / r.trials:>13.2f} {1000 * r.cpu_s / r.trials:>12.2f} "
            f"{1000 * r.read_s:>12.1f}"
        )
    for layout in args.layouts:
        mine = [r for r in rows if r.layout == layout]
        if len(mine) >= 2:
            first, last = mine[0], mine[-1]
            growth = (last.blob_bytes / last.trials) / (first.blob_bytes / first.trials)
            print(
                f"{layout}: bytes per trial x{growth:.2f} from {first.trials} to {last.trials} "
                "trials"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
