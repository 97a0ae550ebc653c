"""kill -9 at several points of a real `agenttts search` process, then the same command again:
the archive ends up exactly as in an uninterrupted run (no trial lost, none repeated, and no free
evaluation lost or repeated: they are on, as by default), on a SQLite file and on a real
PostgreSQL server alike."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from search_cli import command, comparable, finished_state, run_to_end, signalling

pytestmark = pytest.mark.integration


def reference_run(cmd: list[str], db: str, tmp_path: Path) -> tuple[dict[str, Any], int]:
    """The uninterrupted run: its finished state, and how many checkpoint writes it made (what
    the kill points are fractions of)."""
    counted = tmp_path / "writes"
    done = subprocess.run(
        signalling(cmd),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AGENTTTS_COUNT_WRITES_TO": str(counted)},
    )
    assert done.returncode == 0, done.stderr
    reference = finished_state(db)
    assert reference["status"] == "finished"
    return reference, int(counted.read_text())


def kill_9_at(cmd: list[str], db: str, kill_points: list[int]) -> tuple[int, list[dict[str, Any]]]:
    """Start `cmd` once per kill point and have it SIGKILL itself right after that many
    checkpoint writes of its own, until a run finishes by itself: the kills that landed, and
    the state after each run."""
    landed, states = 0, []
    for writes in kill_points:
        done = subprocess.run(
            signalling(cmd),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            env={**os.environ, "AGENTTTS_SIGNAL_AFTER_WRITES": str(writes)},
        )
        assert done.returncode in (0, -signal.SIGKILL), done.stderr
        landed += done.returncode == -signal.SIGKILL
        states.append(finished_state(db))
        if done.returncode == 0:
            assert states[-1]["status"] == "finished"
            break
    return landed, states


@pytest.mark.parametrize(
    "budgets", [[], ["--budgets", "250,500,1000"]], ids=["one-budget", "three-budgets"]
)
def test_kill_9_anywhere_then_the_same_command_gives_the_uninterrupted_archive(
    tmp_path, checkpoint_db, budgets
):
    task = write_grid_task(tmp_path / "task")
    ref_db = checkpoint_db("ref")
    reference, total = reference_run(
        [*command(task, ref_db, tmp_path / "ref-reports"), *budgets], ref_db, tmp_path
    )
    if budgets:  # a frontier search: every budget's bookkeeping and test result
        assert (
            set(reference["frontier"])
            == set(reference["frontier_tests"])
            == {
                "250",
                "500",
                "1000",
            }
        )
    executed = [t for t in reference["archive"] if t["status"] != "rejected"]
    assert len(executed) >= 10 and total >= 20  # long enough to be killed in the middle
    derived = [t for t in executed if t.get("derived_from") is not None]
    assert derived and len({t["derived_from"] for t in derived}) >= 3  # free evaluations on

    db = checkpoint_db("killed")
    cmd = [*command(task, db, tmp_path / "reports"), *budgets]
    # each run's own writes: the first dies at once, the next ones a fifth of the way further
    # on (give or take one, so kills land after checkpoints and after task writes alike)
    step = total // 5
    landed, _ = kill_9_at(cmd, db, [2, step + 1, step, step - 1, step, step + 1, step])
    assert landed >= 3, f"only {landed} kill(s) landed mid-run"
    run_to_end(cmd)
    resumed = finished_state(db)

    assert comparable(resumed) == comparable(reference)
    ids = [t["trial_id"] for t in resumed["archive"]]
    assert ids == list(range(len(ids)))
    keys = [  # executed and derived alike: none evaluated twice
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
        racing(command(Path("sim-2wiki"), ref_db, tmp_path / "ref-reports")), ref_db, tmp_path
    )
    dropped = [t for t in reference["archive"] if t.get("fidelity", 1.0) < 1.0]  # derived: compact
    assert dropped and len(dropped) < len(reference["archive"])  # a race, with winners

    db = checkpoint_db("killed")
    cmd = racing(command(Path("sim-2wiki"), db, tmp_path / "reports"))
    step = total // 6
    landed, states = kill_9_at(cmd, db, [step, step + 1, step, step - 1, step, step + 1, step])
    mid_race = sum(any(p.get("prior") for p in s.get("pending") or []) for s in states)
    assert landed >= 3, f"only {landed} kill(s) landed mid-run"
    assert mid_race >= 1, "no kill landed while a race was in flight"
    run_to_end(cmd)
    resumed = finished_state(db)
    assert comparable(resumed) == comparable(reference)
    keys = [json.dumps(t["config"], sort_keys=True) for t in resumed["archive"]]
    assert len(keys) == len(set(keys))  # one trial per configuration, partial or whole
