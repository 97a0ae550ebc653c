"""One writer per thread, with real `agenttts search` processes: a second process on a thread is
refused at once naming the holder, a holder killed with -9 does not block the same command from
resuming, and two threads of one SQLite file run side by side to the archives they have alone."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from search_cli import (
    AGENTTTS,
    checkpoint_counter,
    command,
    comparable,
    finished_state,
    run_to_end,
    signalling,
)

pytestmark = pytest.mark.integration


def stopped(proc: subprocess.Popen[bytes]) -> bool:
    """Whether `proc` is stopped by a signal (state T in /proc), as the launcher leaves it."""
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "T"


def test_a_second_process_is_refused_and_the_same_command_resumes_after_kill_9(
    tmp_path, checkpoint_db
):
    task = write_grid_task(tmp_path / "task")
    ref_db = checkpoint_db("ref")
    run_to_end(command(task, ref_db, tmp_path / "ref-reports"))
    reference = finished_state(ref_db)

    db = checkpoint_db("shared")
    cmd = command(task, db, tmp_path / "reports")
    # the holder, alive but idle while we look: it stops itself right after its 8th checkpoint
    # write (committed, so it holds no SQLite write lock while stopped)
    first = subprocess.Popen(
        signalling(cmd),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AGENTTTS_SIGNAL_AFTER_WRITES": "8", "AGENTTTS_SIGNAL": "STOP"},
    )
    try:
        with checkpoint_counter(db) as count:
            deadline = time.monotonic() + 120
            while not stopped(first) and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert stopped(first), "the first search did not stop after its 8th write"
            before = count("k")
            started = time.monotonic()
            second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            took = time.monotonic() - started
            assert second.returncode == 2, second.stderr
            holder = f"host {socket.gethostname()}, pid {first.pid}, started 20"
            assert holder in second.stderr and "thread 'k'" in second.stderr
            assert took < 30  # refused on sight, not after waiting for the holder
            assert count("k") == before  # the refused process wrote nothing
            runs = subprocess.run([AGENTTTS, "runs", "--db", db, "--json"], capture_output=True,
                                  text=True, timeout=120)  # fmt: skip
            assert f'"status": "running ({holder}' in runs.stdout, runs.stderr
    finally:
        first.kill()  # -9, while stopped: its hold stays behind in the database
        first.wait(timeout=30)

    run_to_end(cmd)  # the same command: the dead holder does not block it
    assert comparable(finished_state(db)) == comparable(reference)


def test_two_threads_of_one_sqlite_file_run_side_by_side(tmp_path):
    task = write_grid_task(tmp_path / "task")
    seeds = {"a": 3, "b": 4}
    reference = {}
    for thread, seed in seeds.items():
        alone = str(tmp_path / f"alone-{thread}.sqlite")
        run_to_end(command(task, alone, tmp_path / "alone", thread=thread, seed=seed))
        reference[thread] = finished_state(alone, thread)

    shared = str(tmp_path / "shared.sqlite")
    procs = {
        thread: subprocess.Popen(
            command(task, shared, tmp_path / "reports", thread=thread, seed=seed),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for thread, seed in seeds.items()
    }
    for proc in procs.values():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    for thread in seeds:
        assert comparable(finished_state(shared, thread)) == comparable(reference[thread])
    con = sqlite3.connect(shared)
    spans = dict(
        con.execute(
            "SELECT thread_id, MIN(checkpoint_id) || ' ' || MAX(checkpoint_id) FROM checkpoints "
            "GROUP BY thread_id"
        ).fetchall()
    )
    con.close()
    (a0, a1), (b0, b1) = (spans["a"].split(), spans["b"].split())
    assert a0 < b1 and b0 < a1, "the two searches did not overlap in time"
