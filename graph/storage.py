"""Where search threads live: a SQLite file, or a PostgreSQL database a team shares (`--db`).

A `--db` that starts with ``postgresql://`` (or ``postgres://``) is a PostgreSQL URL served by
LangGraph's Postgres checkpointer (the `postgres` extra: langgraph-checkpoint-postgres, psycopg);
anything else is a SQLite file path. Everything above this module (search, resume, runs, show,
bench, the writer lock) asks it for a checkpointer or a connection and never cares which it got.
A password belongs in ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads both); one written into the URL
is masked wherever agenttts prints the URL (`display`, by `agenttts.urls.masked` as every URL).

A `--db` is agenttts' alone: one that holds tables the checkpointer and the writer lock do not
create (another application's database, a sample cache) is refused before anything is written to
it, and so is one whose checkpoint tables lack the checkpointer's columns. A SQLite path must be a
regular file (`/dev/full` is not); one that cannot be opened where it lies (a read-only folder: a
WAL database needs to write beside itself even to be read) is said to be so, not "damaged".
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from agenttts.environment.user_files import file_kind
from agenttts.errors import InputError
from agenttts.graph.state import GROWING
from agenttts.urls import masked

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: How long a SQLite writer waits for another process's write to end (several searches, one file).
SQLITE_BUSY_TIMEOUT_S = 60
#: Serialises schema set-up between processes opening a fresh PostgreSQL database at once (a
#: concurrent `CREATE TABLE IF NOT EXISTS` can fail there); any constant key of our own will do.
PG_SETUP_LOCK_KEY = 0x61677454_7453
#: agenttts' own table beside the checkpoints (`writer_lock`).
WRITERS_TABLE = "agenttts_writers"
#: SQLite's primary result codes of a file that cannot be opened or written where it lies
#: (SQLITE_PERM, _READONLY, _IOERR, _FULL, _CANTOPEN), as opposed to a damaged one.
_SQLITE_CANNOT_USE = frozenset({3, 8, 10, 13, 14})


def is_postgres(db: str | Path) -> bool:
    return str(db).startswith(POSTGRES_SCHEMES)


def display(db: str | Path) -> str:
    """`db` as messages may print it: a PostgreSQL URL without its password (`urls.masked`)."""
    return masked(str(db)) if is_postgres(db) else str(db)


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
    """LangGraph's checkpointer on `db`, its tables set up (`GrowingLists`: no checkpoint holds a
    whole growing list). With `create=False` (readers: runs, show) a SQLite file must exist
    already; a PostgreSQL database always exists once reachable."""
    if is_postgres(db):
        with _postgres_checkpointer(str(db)) as saver:
            yield saver
        return
    path = sqlite_path(db)
    if not create and not path.exists():
        raise InputError(f"no checkpoint database at {path}")
    check_sqlite(path, write=create)
    with contextlib.closing(sqlite3.connect(str(path), check_same_thread=False)) as conn:
        saver = SqliteCheckpoints(conn)
        try:
            # WAL (set by the saver) with synchronous=NORMAL: a commit survives the process
            # being killed (the OS holds it) without an fsync per checkpoint; only a power cut
            # can lose the last few, which the resume then re-runs. The busy timeout lets
            # searches on other threads of the same file take turns writing instead of failing.
            conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            saver.setup()
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError as e:  # full, read-only, an I/O error: before any step
            raise InputError(
                f"--db {path} cannot be {'written' if create else 'read'} there (SQLite: {e})"
                f"{_read_only(path)}"
            ) from None
        yield saver


class GrowingLists(BaseCheckpointSaver):
    """What the CLI's checkpointers add to LangGraph's: no checkpoint holds a whole growing list.

    The archive, the guideline log and the agent failures (`state.GROWING`) are delta channels:
    each step's appended items are stored once, as that step's writes, and LangGraph rebuilds a
    list from the writes since the nearest snapshot. It also stores a snapshot of the whole list
    every `state.SNAPSHOT_EVERY` appends or 5,000 supersteps, to bound that replay; at 10,000
    trials one such checkpoint held the whole archive (6.5 MB in `perf/bench_archive_growth.py`),
    so growth turned quadratic. Here
    such snapshots are dropped: every checkpoint is bounded by what its step added, and reading a
    thread replays all of its writes (which reading the whole archive costs anyway). A snapshot
    is kept where it carries meaning: the first checkpoint of a fork off a checkpoint whose
    writes went to another branch (Studio's time travel), which must not replay those writes.
    """

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        values = checkpoint["channel_values"]
        held = GROWING & set(values)
        if held and (metadata.get("source") == "loop" or not self._forks(config)):
            kept = {k: v for k, v in values.items() if k not in held}
            checkpoint = {**checkpoint, "channel_values": kept}
        return super().put(config, checkpoint, metadata, new_versions)

    def _forks(self, config: Any) -> bool:
        """Whether a checkpoint made on `config` (its parent) forks off writes to a growing list
        that went to another child (an update on an earlier checkpoint)."""
        parent = self.get_tuple(config) if config["configurable"].get("checkpoint_id") else None
        return parent is not None and any(ch in GROWING for _, ch, _ in parent.pending_writes or ())


class SqliteCheckpoints(GrowingLists, SqliteSaver):
    """LangGraph's SQLite checkpointer, bounded (`GrowingLists`)."""

    def get_delta_channel_history(self, *, config: Any, channels: Any) -> Any:
        """LangGraph's fast path binds one SQL parameter per ancestor checkpoint and channel; a
        thread longer than this SQLite build allows (32,766 parameters upstream, about 2,000
        search iterations) is read by the saver contract's own walk instead."""
        try:
            return super().get_delta_channel_history(config=config, channels=channels)
        except sqlite3.OperationalError as e:
            if "too many SQL variables" not in str(e):
                raise
            return BaseCheckpointSaver.get_delta_channel_history(
                self, config=config, channels=channels
            )


def check_sqlite(path: Path, *, write: bool = True) -> None:
    """One clear InputError for a SQLite `--db` that cannot serve, before anything is written to
    it: a folder or no regular file, a folder that cannot be made or written, a file that cannot
    be opened there, one that is no SQLite database or that SQLite's `quick_check` finds damaged
    (a partly corrupt file otherwise reads silently until a damaged page is hit, mid-search), or
    another application's database."""
    if path.is_dir():
        raise InputError(f"--db {path} is a folder, not a database file")
    kind = file_kind(path)
    if kind is not None:
        raise InputError(f"--db {path} is {kind}, not a database file")
    if write:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"--db {path}: cannot create its folder ({e.strerror or e})") from None
        unwritable = path if path.exists() else path.parent
        if not os.access(unwritable, os.W_OK):  # WAL writes beside the file too
            raise InputError(f"--db {path}: {unwritable} is not writable{_read_only(path)}")
    try:
        with contextlib.closing(sqlite3.connect(str(path), timeout=SQLITE_BUSY_TIMEOUT_S)) as con:
            found = [str(r[0]) for r in con.execute("PRAGMA quick_check")]
            tables = {
                str(name): {
                    str(c[0]) for c in con.execute("SELECT name FROM pragma_table_info(?)", (name,))
                }
                for (name,) in con.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            }
    except sqlite3.DatabaseError as e:  # not a database, damaged where the check starts, or
        code = getattr(e, "sqlite_errorcode", 0) & 0xFF  # a file SQLite cannot open here
        if code in _SQLITE_CANNOT_USE:
            raise InputError(
                f"--db {path} cannot be {'written' if write else 'read'} there (SQLite: {e})"
                f"{_read_only(path)}"
            ) from None
        found = [str(e)]
    if found != ["ok"]:
        lines = "\n".join(found).splitlines()
        more = f"; ... {len(lines) - 3} more" if len(lines) > 3 else ""
        raise InputError(
            f"--db {path} is damaged or no SQLite database (SQLite's quick_check: "
            f"{'; '.join(lines[:3])}{more}); restore it from a copy, or give another --db"
        )
    refuse_foreign_tables(path, tables, _sqlite_tables())


def _read_only(path: Path) -> str:
    """Why a file cannot be opened or written, where the file system says it: read-only."""
    folder = path.parent
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return ""
    if not read_only:
        return ""
    return (
        f": {folder} is on a read-only file system (SQLite writes beside a database even to "
        "read it); copy it to a writable folder"
    )


def refuse_foreign_tables(
    db: str | Path, found: dict[str, set[str]], ours: dict[str, set[str]]
) -> None:
    """InputError, before anything is written, for a database holding tables agenttts does not
    create (another application's), or ones named like the checkpointer's without its columns."""
    foreign = sorted(set(found) - set(ours) - {WRITERS_TABLE})
    clashing = sorted(t for t in set(found) & set(ours) if not ours[t] <= found[t])
    if foreign:
        shown = ", ".join(foreign[:8]) + (
            f" and {len(foreign) - 8} more" if len(foreign) > 8 else ""
        )
        raise InputError(
            f"--db {display(db)} holds tables agenttts did not create ({shown}): another "
            "application's database? Nothing was written to it; give agenttts a database of its own"
        )
    if clashing:
        raise InputError(
            f"--db {display(db)} holds tables named like LangGraph's checkpoint tables but not "
            f"theirs ({', '.join(clashing)}: columns missing); nothing was written to it; give "
            "agenttts a database of its own"
        )


@cache
def _sqlite_tables() -> dict[str, set[str]]:
    """The tables (and their columns) LangGraph's SQLite checkpointer creates, as it makes them."""
    with contextlib.closing(sqlite3.connect(":memory:", check_same_thread=False)) as con:
        SqliteSaver(con).setup()
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            n: {str(c[0]) for c in con.execute("SELECT name FROM pragma_table_info(?)", (n,))}
            for n in names
        }


def _postgres_tables() -> dict[str, set[str]]:
    """The tables LangGraph's PostgreSQL checkpointer creates (its migrations name them; their
    columns change from one migration to the next, so only the names are compared)."""
    from langgraph.checkpoint.postgres import PostgresSaver

    names = re.findall(r"CREATE TABLE IF NOT EXISTS\s+(\w+)", "\n".join(PostgresSaver.MIGRATIONS))
    return {name: set() for name in names}


@cache
def _postgres_class() -> Any:
    """LangGraph's PostgreSQL checkpointer, bounded (`GrowingLists`); made on first use, as the
    `postgres` extra may be missing."""
    from langgraph.checkpoint.postgres import PostgresSaver

    class PostgresCheckpoints(GrowingLists, PostgresSaver):
        pass

    return PostgresCheckpoints


@contextmanager
def _postgres_checkpointer(url: str) -> Iterator[BaseCheckpointSaver]:
    psycopg = _psycopg()
    with ExitStack() as stack:
        try:
            saver = stack.enter_context(_postgres_class().from_conn_string(url))
        except psycopg.OperationalError as e:
            raise InputError(f"cannot connect to {display(url)}: {str(e).strip()}") from None
        conn = saver.conn
        assert isinstance(conn, psycopg.Connection)  # from_conn_string: one connection, no pool
        conn.execute("SELECT pg_advisory_lock(%s)", (PG_SETUP_LOCK_KEY,))
        try:
            found = conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchall()
            names = {str(row["table_name"]): set[str]() for row in found}  # dict rows
            refuse_foreign_tables(url, names, _postgres_tables())
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
