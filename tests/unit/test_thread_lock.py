"""The writer lock on a real SQLite file: refusal naming the holder, stale holders taken over (a
dead pid on this host, a reused pid, a silent holder on another host), heartbeat and loss; and the
storage helpers it stands on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agenttts.errors import AgentTTSError, InputError
from agenttts.graph.storage import connect, display, is_postgres, open_checkpointer, thread_ids
from agenttts.graph.writer_lock import HOST, PID_NAMESPACE, ThreadLock, live_writers


def plant(
    db: Path, thread: str, host: str, pid: int, age_s: float, proc_start: str | None = None
) -> None:
    """A holder's row as another process would have left it, its heartbeat `age_s` old."""
    with ThreadLock(db, "setup"):  # creates the table
        pass
    namespace = PID_NAMESPACE if host == HOST else None
    conn = connect(db)
    conn.execute(
        "INSERT INTO agenttts_writers VALUES (?, ?, ?, ?, ?, '2030-01-02T03:04:05+00:00', "
        "((julianday('now') - 2440587.5) * 86400.0) - ?, 'x')",
        (thread, host, namespace, pid, proc_start, age_s),
    )
    conn.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    db = tmp_path / "runs.sqlite"
    with ThreadLock(db, "t"):
        with pytest.raises(InputError) as err:
            ThreadLock(db, "t").acquire()
        message = str(err.value)
        assert f"host {socket.gethostname()}, pid {os.getpid()}, started 20" in message
        assert "thread 't'" in message
        with ThreadLock(db, "other"):  # another thread of the same database is free
            assert set(live_writers(db)) == {"t", "other"}
    assert live_writers(db) == {}
    with ThreadLock(db, "t"):  # released on exit
        pass


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path):
    db = tmp_path / "runs.sqlite"
    plant(db, "t", HOST, dead_pid(), age_s=0)
    assert live_writers(db) == {}
    with ThreadLock(db, "t"):
        assert live_writers(db)["t"].pid == os.getpid()


def test_a_reused_pid_is_not_the_holder(tmp_path):
    db = tmp_path / "runs.sqlite"
    plant(db, "t", HOST, os.getppid(), age_s=0, proc_start="1")  # alive, but started otherwise
    with ThreadLock(db, "t"):
        pass


def test_a_live_holder_on_this_host_holds_even_with_a_silent_heartbeat(tmp_path):
    db = tmp_path / "runs.sqlite"
    plant(db, "t", HOST, os.getppid(), age_s=600)  # e.g. stopped with SIGSTOP: still the holder
    with pytest.raises(InputError, match=f"pid {os.getppid()}"):
        ThreadLock(db, "t").acquire()


def test_another_hosts_holder_counts_until_its_heartbeat_expires(tmp_path):
    db = tmp_path / "runs.sqlite"
    plant(db, "fresh", "elsewhere", 1, age_s=5)
    plant(db, "silent", "elsewhere", 1, age_s=600)
    with pytest.raises(InputError, match="host elsewhere, pid 1, started 2030-01-02T03:04:05"):
        ThreadLock(db, "fresh").acquire()
    with ThreadLock(db, "silent"):
        pass


def test_heartbeat_renews_and_a_lost_hold_stops_the_writer(tmp_path):
    db = tmp_path / "runs.sqlite"
    with ThreadLock(db, "t", heartbeat_s=0.05) as lock:
        time.sleep(0.3)
        assert live_writers(db)["t"].heartbeat_age_s < 0.3
        lock.check()
        conn = connect(db)
        conn.execute("UPDATE agenttts_writers SET token = 'someone-else'")
        conn.close()
        deadline = time.monotonic() + 5
        while not lock._lost and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(AgentTTSError, match="lost its hold on thread 't'"):
            lock.check()


def test_thread_ids_oldest_first_through_the_checkpointer(tmp_path):
    from agenttts.graph.runner import run_search

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
    from grid_task import write_grid_task

    task = str(write_grid_task(tmp_path / "task"))
    db = tmp_path / "runs.sqlite"
    settings = {"proposer": "random", "max_iterations": 1, "report_dir": str(tmp_path / "r")}
    for thread in ("b", "a", "c"):
        run_search(task, thread, db, settings)
    run_search(task, "a", db, settings)  # continuing a thread does not move it
    with open_checkpointer(db, create=False) as saver:
        assert thread_ids(saver) == ["b", "a", "c"]


def test_display_masks_a_password_and_keeps_the_rest():
    assert display("runs.sqlite") == "runs.sqlite"
    assert is_postgres("postgresql://u@h/db") and is_postgres("postgres://h/db")
    assert not is_postgres("postgresql.sqlite")
    assert display("postgresql://u:s3cret@h:5432/db?sslmode=require") == (
        "postgresql://u:***@h:5432/db?sslmode=require"
    )
    assert "s3cret" not in display("postgresql://h/db?password=s3cret&sslmode=disable")
