"""Where search threads live: a SQLite file, or a PostgreSQL database a team shares (`--db`).

A `--db` that starts with ``postgresql://`` (or ``postgres://``) is a PostgreSQL URL served by
LangGraph's Postgres checkpointer (the `postgres` extra: langgraph-checkpoint-postgres, psycopg);
anything else is a SQLite file path. Everything above this module (search, resume, runs, show,
bench, the writer lock) asks it for a checkpointer or a connection and never cares which it got.
A password belongs in ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads both); one written into the URL
is masked wherever agenttts prints the URL (`display`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from agenttts.errors import InputError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: How long a SQLite writer waits for another process's write to end (several searches, one file).
SQLITE_BUSY_TIMEOUT_S = 60
#: Serialises schema set-up between processes opening a fresh PostgreSQL database at once (a
#: concurrent `CREATE TABLE IF NOT EXISTS` can fail there); any constant key of our own will do.
PG_SETUP_LOCK_KEY = 0x61677454_7453


def is_postgres(db: str | Path) -> bool:
    return str(db).startswith(POSTGRES_SCHEMES)


def display(db: str | Path) -> str:
    """`db` as messages may print it: a PostgreSQL URL without its password."""
    if not is_postgres(db):
        return str(db)
    parts = urlsplit(str(db))
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = urlencode(
        [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*"
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def sqlite_path(db: str | Path) -> Path:
    return Path(db).expanduser()


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise InputError(
            "a PostgreSQL --db needs the postgres extra: pip install 'agenttts[postgres]'"
        ) from None
    return psycopg


@contextmanager
def open_checkpointer(db: str | Path, *, create: bool = True) -> Iterator[BaseCheckpointSaver]:
    """LangGraph's checkpointer on `db`, its tables set up. With `create=False` (readers: runs,
    show) a SQLite file must exist already; a PostgreSQL database always exists once reachable."""
    if is_postgres(db):
        with _postgres_checkpointer(str(db)) as saver:
            yield saver
        return
    path = sqlite_path(db)
    if not create and not path.exists():
        raise InputError(f"no checkpoint database at {path}")
    check_sqlite(path, write=create)
    with SqliteSaver.from_conn_string(str(path)) as saver:
        # WAL (set by the saver) with synchronous=NORMAL: a commit survives the process being
        # killed (the OS holds it) without an fsync per checkpoint; only a power cut can lose the
        # last few, which the resume then re-runs. The busy timeout lets searches on other
        # threads of the same file take turns writing instead of failing.
        saver.conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        saver.conn.execute("PRAGMA synchronous=NORMAL")
        yield saver


def check_sqlite(path: Path, *, write: bool = True) -> None:
    """One clear InputError for a SQLite `--db` that cannot serve, before anything runs: a
    folder, a folder that cannot be made or written, a file that is no SQLite database, or one
    SQLite's `quick_check` finds damaged (a partly corrupt file otherwise reads silently until a
    damaged page is hit, mid-search)."""
    if path.is_dir():
        raise InputError(f"--db {path} is a folder, not a database file")
    if write:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"--db {path}: cannot create its folder ({e.strerror or e})") from None
        unwritable = path if path.exists() else path.parent
        if not os.access(unwritable, os.W_OK):  # WAL writes beside the file too
            raise InputError(f"--db {path}: {unwritable} is not writable")
    try:
        with contextlib.closing(sqlite3.connect(str(path), timeout=SQLITE_BUSY_TIMEOUT_S)) as con:
            found = [str(r[0]) for r in con.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as e:  # not a database, or damaged where the check starts
        found = [str(e)]
    if found != ["ok"]:
        lines = "\n".join(found).splitlines()
        more = f"; ... {len(lines) - 3} more" if len(lines) > 3 else ""
        raise InputError(
            f"--db {path} is damaged or no SQLite database (SQLite's quick_check: "
            f"{'; '.join(lines[:3])}{more}); restore it from a copy, or give another --db"
        )


@contextmanager
def _postgres_checkpointer(url: str) -> Iterator[BaseCheckpointSaver]:
    psycopg = _psycopg()
    from langgraph.checkpoint.postgres import PostgresSaver

    with ExitStack() as stack:
        try:
            saver = stack.enter_context(PostgresSaver.from_conn_string(url))
        except psycopg.OperationalError as e:
            raise InputError(f"cannot connect to {display(url)}: {str(e).strip()}") from None
        conn = saver.conn
        assert isinstance(conn, psycopg.Connection)  # from_conn_string: one connection, no pool
        conn.execute("SELECT pg_advisory_lock(%s)", (PG_SETUP_LOCK_KEY,))
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (PG_SETUP_LOCK_KEY,))
        yield saver


def unavailable() -> tuple[type[Exception], ...]:
    """The errors of a database that failed under a running search (locked past the busy timeout,
    a dropped connection, a restarted server): what was committed stays, the run can go on later."""
    errors: list[type[Exception]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:
        pass
    else:
        errors.append(psycopg.OperationalError)
    return tuple(errors)


def connect(db: str | Path) -> Any:
    """A DB-API connection of our own to `db`, in autocommit mode (the caller writes BEGIN and
    COMMIT): for agenttts' own small tables beside the checkpoints (the writer lock)."""
    if is_postgres(db):
        psycopg = _psycopg()
        try:
            return psycopg.connect(str(db), autocommit=True)
        except psycopg.OperationalError as e:
            raise InputError(f"cannot connect to {display(db)}: {str(e).strip()}") from None
    path = sqlite_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path), timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def thread_ids(saver: BaseCheckpointSaver) -> list[str]:
    """Every thread the checkpointer holds, oldest first: a thread starts with an input checkpoint
    (metadata ``source: input``), which the checkpointer's public `list()` finds on either backend
    (newest first)."""
    starts = [
        t.config["configurable"]["thread_id"] for t in saver.list(None, filter={"source": "input"})
    ]
    return list(dict.fromkeys(reversed(starts)))
