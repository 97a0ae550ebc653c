"""kill -9 at several points of a real `agenttts search` process, then the same command again:
the archive ends up exactly as in an uninterrupted run (no trial lost, none repeated)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task

pytestmark = pytest.mark.integration

AGENTTTS = str(Path(sys.executable).with_name("agenttts"))


def command(task: Path, db: Path, reports: Path) -> list[str]:
    return [
        AGENTTTS, "search", str(task), "--thread", "k", "--db", str(db), "--proposer", "insight",
        "--batch-size", "3", "--max-iterations", "10", "--patience", "0", "--seed", "3",
        "--report-dir", str(reports), "--quiet",
    ]  # fmt: skip


def checkpoints(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id='k'").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        con.close()


def finished_state(db: Path) -> dict:
    out = subprocess.run(
        [AGENTTTS, "show", "k", "--db", str(db), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def comparable(state: dict) -> dict:
    """What must be identical: everything but timings and the report's location."""

    def strip(trial: dict | None) -> dict | None:
        return None if trial is None else {k: v for k, v in trial.items() if k != "wall_time_s"}

    return {
        "archive": [strip(t) for t in state["archive"]],
        "test_result": strip(state.get("test_result")),
        **{k: state.get(k) for k in ("guideline_log", "guidelines", "preferences", "iteration",
                                     "stop_reason", "agent_usage", "agent_failures", "status")},
    }  # fmt: skip


def run_to_end(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_kill_9_anywhere_then_the_same_command_gives_the_uninterrupted_archive(tmp_path):
    task = write_grid_task(tmp_path / "task")
    ref_db = tmp_path / "ref.sqlite"
    run_to_end(command(task, ref_db, tmp_path / "ref-reports"))
    reference = finished_state(ref_db)
    assert reference["status"] == "finished"
    total = checkpoints(ref_db)
    executed = [t for t in reference["archive"] if t["status"] != "rejected"]
    assert len(executed) >= 10 and total >= 20  # long enough to be killed in the middle

    db = tmp_path / "killed.sqlite"
    cmd = command(task, db, tmp_path / "reports")
    kill_at = [2, total // 4, total // 2, (3 * total) // 4, total - 3]
    landed = 0
    for target in kill_at:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while checkpoints(db) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            landed += 1
        proc.wait(timeout=30)
        if finished_state(db)["status"] == "finished":
            break
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
