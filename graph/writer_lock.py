"""One writer per thread: a search holds its thread in a small table beside the checkpoints.

Two processes continuing one thread would each re-run the same pending node, interleave their
checkpoints and number trials twice. So `run_search` (search, demo, bench) takes the thread first,
and a second process is refused at once with the holder named (host, pid, start time). The hold is
a row in `agenttts_writers` in the checkpoint database itself, so it holds for a team's PostgreSQL
database as well as for a SQLite file. A holder killed with -9 leaves its row behind; the row is
stale, and taken over by the next `search`, as soon as its process is gone from this host (pid and
process start time, in the same pid namespace: containers sharing a host name do not count as one
host), or, for a holder elsewhere, once its heartbeat (renewed every `HEARTBEAT_S` by a thread of
the holder, in the database's clock) is older than `EXPIRY_S`.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from agenttts.errors import AgentTTSError, InputError
from agenttts.graph.storage import WRITERS_TABLE, connect, display, is_postgres

HEARTBEAT_S = 10.0
#: A holder on another host is presumed dead after this long without a heartbeat.
EXPIRY_S = 60.0
#: Serialises takers on PostgreSQL (a transaction-scoped advisory lock; SQLite: BEGIN IMMEDIATE).
PG_TAKE_LOCK_KEY = 0x61677454_7457
HOST = socket.gethostname()


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


PID_NAMESPACE = _pid_namespace()

_TABLE = f"""CREATE TABLE IF NOT EXISTS {WRITERS_TABLE} (
  thread_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid_namespace TEXT, pid INTEGER NOT NULL,
  proc_start TEXT, started_at TEXT NOT NULL, heartbeat DOUBLE PRECISION NOT NULL,
  token TEXT NOT NULL)"""


@dataclass(frozen=True)
class Holder:
    """The process writing a thread, as its row records it."""

    thread_id: str
    host: str
    pid_namespace: str | None
    pid: int
    proc_start: str | None
    started_at: str
    heartbeat_age_s: float

    def __str__(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started_at}"

    def alive(self, expiry_s: float = EXPIRY_S) -> bool:
        """On this host the process table says (a stopped or starved holder still holds);
        elsewhere, a heartbeat within `expiry_s`."""
        if (self.host, self.pid_namespace) == (HOST, PID_NAMESPACE):
            return _running(self.pid, self.proc_start)
        return self.heartbeat_age_s <= expiry_s


class _Db:
    """The lock's own autocommit connection, with the two dialects' few differences."""

    def __init__(self, db: str | Path):
        self.postgres = is_postgres(db)
        self.conn = connect(db)
        self.now = (
            "extract(epoch from clock_timestamp())::double precision"
            if self.postgres
            else "((julianday('now') - 2440587.5) * 86400.0)"
        )

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s") if self.postgres else sql, params)

    def begin_exclusive(self) -> None:
        if self.postgres:
            self.execute("BEGIN")
            self.execute("SELECT pg_advisory_xact_lock(?)", (PG_TAKE_LOCK_KEY,))
        else:
            self.execute("BEGIN IMMEDIATE")
        self.execute(_TABLE)

    def has_table(self) -> bool:
        sql = (
            f"SELECT to_regclass('{WRITERS_TABLE}') IS NOT NULL"
            if self.postgres
            else f"SELECT COUNT(*) FROM sqlite_master WHERE name = '{WRITERS_TABLE}'"
        )
        return bool(self.execute(sql).fetchone()[0])

    def holders(self, thread_id: str | None = None) -> list[Holder]:
        where, params = ("WHERE thread_id = ?", (thread_id,)) if thread_id is not None else ("", ())
        rows = self.execute(
            "SELECT thread_id, host, pid_namespace, pid, proc_start, started_at, "
            f"{self.now} - heartbeat FROM {WRITERS_TABLE} {where}",
            params,
        ).fetchall()
        return [Holder(r[0], r[1], r[2], int(r[3]), r[4], r[5], float(r[6])) for r in rows]


class ThreadLock:
    """Hold `thread_id` in `db` for this process: `with ThreadLock(db, thread): ...`.

    Entering raises InputError (exit 2) naming the holder when another live process writes the
    thread; `check()` raises AgentTTSError when this hold was lost (its heartbeat could not reach
    the database for `expiry_s` and another process took the thread over)."""

    def __init__(
        self,
        db: str | Path,
        thread_id: str,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        expiry_s: float = EXPIRY_S,
    ):
        self.db, self.thread_id = db, thread_id
        self.heartbeat_s, self.expiry_s = heartbeat_s, expiry_s
        self.token = uuid.uuid4().hex
        self._conn: _Db | None = None
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._lost = False
        self._beat: threading.Thread | None = None

    def acquire(self) -> None:
        conn = self._conn = _Db(self.db)
        try:
            conn.begin_exclusive()
            try:
                held = conn.holders(self.thread_id)
                if held and held[0].alive(self.expiry_s):
                    raise InputError(
                        f"thread {self.thread_id!r} in {display(self.db)} is being written by "
                        f"another process ({held[0]}); wait for it to end or stop it, then run "
                        "the same command again to continue the thread"
                    )
                conn.execute(f"DELETE FROM {WRITERS_TABLE} WHERE thread_id = ?", (self.thread_id,))
                conn.execute(
                    f"INSERT INTO {WRITERS_TABLE} (thread_id, host, pid_namespace, pid, "
                    "proc_start, started_at, heartbeat, token) "
                    f"VALUES (?, ?, ?, ?, ?, ?, {conn.now}, ?)",
                    (
                        self.thread_id,
                        HOST,
                        PID_NAMESPACE,
                        os.getpid(),
                        _process_start(os.getpid()),
                        datetime.now().astimezone().isoformat(timespec="seconds"),
                        self.token,
                    ),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except BaseException:
            self._close()
            raise
        self._beat = threading.Thread(
            target=self._heartbeat, name=f"agenttts-writer-{self.thread_id}", daemon=True
        )
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                with self._mutex:
                    assert self._conn is not None
                    cur = self._conn.execute(
                        f"UPDATE {WRITERS_TABLE} SET heartbeat = {self._conn.now} "
                        "WHERE thread_id = ? AND token = ?",
                        (self.thread_id, self.token),
                    )
                if cur.rowcount == 0:
                    self._lost = True
                    return
            except Exception:  # the database is unreachable for now: the next beat retries
                continue

    def check(self) -> None:
        if self._lost:
            raise AgentTTSError(
                f"this process lost its hold on thread {self.thread_id!r} (no heartbeat reached "
                f"{display(self.db)} for {self.expiry_s:.0f} s) and another process took it over"
            )

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        try:
            with self._mutex:
                if self._conn is not None:
                    self._conn.execute(
                        f"DELETE FROM {WRITERS_TABLE} WHERE thread_id = ? AND token = ?",
                        (self.thread_id, self.token),
                    )
        except Exception:  # unreachable now: the row goes stale and the next search takes it
            pass
        finally:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.conn.close()
            self._conn = None

    def __enter__(self) -> ThreadLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def live_writers(db: str | Path) -> dict[str, Holder]:
    """The threads of `db` a live process is writing now, with their holders (for `runs`)."""
    conn = _Db(db)
    try:
        if not conn.has_table():
            return {}
        return {h.thread_id: h for h in conn.holders() if h.alive()}
    finally:
        conn.conn.close()


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from Linux's /proc; None where it cannot say.
    The start time tells the recorded process from a later one given the same pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], fields[19]


def _process_start(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def _running(pid: int, proc_start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process, alive
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, start = stat
    return state != "Z" and proc_start in (None, start)  # a zombie has ended
