"""kill -9 at several points of a real `agenttts search` process, then the same command again:
the archive ends up exactly as in an uninterrupted run (no trial lost, none repeated), on a SQLite
file and on a real PostgreSQL server alike."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from search_cli import checkpoint_counter, command, comparable, finished_state, run_to_end

pytestmark = pytest.mark.integration


def reference_run(cmd: list[str], db: str) -> tuple[dict[str, Any], int]:
    """The uninterrupted run: its finished state, and how many checkpoints it wrote (what the
    kill points are fractions of)."""
    run_to_end(cmd)
    reference = finished_state(db)
    assert reference["status"] == "finished"
    with checkpoint_counter(db) as count:
        return reference, count("k")


def kill_9_at(cmd: list[str], db: str, targets: list[int]) -> tuple[int, list[dict[str, Any]]]:
    """Start `cmd` once per target and kill -9 it as soon as `db` holds that many checkpoints,
    until a run finishes by itself: the kills that landed mid-run, and the state after each."""
    landed, states = 0, []
    with checkpoint_counter(db) as count:
        for target in targets:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while count("k") < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                landed += 1
            proc.wait(timeout=30)
            states.append(finished_state(db))
            if states[-1]["status"] == "finished":
                break
    return landed, states


def test_kill_9_anywhere_then_the_same_command_gives_the_uninterrupted_archive(
    tmp_path, checkpoint_db
):
    task = write_grid_task(tmp_path / "task")
    ref_db = checkpoint_db("ref")
    reference, total = reference_run(command(task, ref_db, tmp_path / "ref-reports"), ref_db)
    executed = [t for t in reference["archive"] if t["status"] != "rejected"]
    assert len(executed) >= 10 and total >= 20  # long enough to be killed in the middle

    db = checkpoint_db("killed")
    cmd = command(task, db, tmp_path / "reports")
    landed, _ = kill_9_at(cmd, db, [2, total // 4, total // 2, (3 * total) // 4, total - 3])
    assert landed >= 3, f"only {landed} kill(s) landed mid-run"
    run_to_end(cmd)
    resumed = finished_state(db)

    assert comparable(resumed) == comparable(reference)
    ids = [t["trial_id"] for t in resumed["archive"]]
    assert ids == list(range(len(ids)))
    keys = [
        json.dumps(t["config"], sort_keys=True)
        for t in resumed["archive"]
        if t["status"] != "rejected"
    ]
    assert len(keys) == len(set(keys))


def test_kill_9_during_races_loses_and_repeats_no_partial_evaluation(tmp_path, checkpoint_db):
    """The same with racing on (`--racing 0.25`, random proposals on a simulated task, so many
    configurations are dropped after a share of the items): every rung is a checkpoint, and a
    kill between or inside rungs resumes the race where it stood. The archive -- fidelities,
    per-item scores and search costs included -- is the uninterrupted one."""

    def racing(cmd: list[str]) -> list[str]:
        cmd = [c if c != "insight" else "random" for c in cmd]
        return [*cmd, "--racing", "0.25"]

    ref_db = checkpoint_db("ref")
    reference, total = reference_run(
        racing(command(Path("sim-2wiki"), ref_db, tmp_path / "ref-reports")), ref_db
    )
    dropped = [t for t in reference["archive"] if t["fidelity"] < 1.0]
    assert dropped and len(dropped) < len(reference["archive"])  # a race, with winners

    db = checkpoint_db("killed")
    cmd = racing(command(Path("sim-2wiki"), db, tmp_path / "reports"))
    kill_at = [total // 5, total // 3, total // 2, (2 * total) // 3, (5 * total) // 6, total - 3]
    landed, states = kill_9_at(cmd, db, kill_at)
    mid_race = sum(any(p.get("prior") for p in s.get("pending") or []) for s in states)
    assert landed >= 3, f"only {landed} kill(s) landed mid-run"
    assert mid_race >= 1, "no kill landed while a race was in flight"
    run_to_end(cmd)
    resumed = finished_state(db)
    assert comparable(resumed) == comparable(reference)
    keys = [json.dumps(t["config"], sort_keys=True) for t in resumed["archive"]]
    assert len(keys) == len(set(keys))  # one trial per configuration, partial or whole
