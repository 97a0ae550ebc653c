"""Shared fixtures. `embedded_server`: the real vLLM CPU server with SmolLM2, never a fake.

Resolution, once per session: `$AGENTTTS_EMBEDDED_URL` (a server already running, e.g. one started
with `agenttts serve`) is reused; otherwise with `AGENTTTS_EMBEDDED=1` (as `make test` sets) one is
started for the session and stopped after it; otherwise tests that need it are skipped and say why.

`postgres_server` / `postgres_db`: a real PostgreSQL server, a throwaway cluster of Debian's
`postgresql` package (`.ci/run` installs it) started on 127.0.0.1 for the session; skipped, saying
why, only where the package or the `postgres` extra is not installed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[str]:
    """Base URL (ending in /v1) of a real embedded server that serves the model `smollm2`."""
    from agenttts.environment.embedded import ENV_URL, EmbeddedServer, wait_healthy

    url = os.environ.get(ENV_URL)
    if url:
        url = url.rstrip("/")
        wait_healthy(url, timeout=30)
        yield url
        return
    if os.environ.get("AGENTTTS_EMBEDDED") != "1":
        pytest.skip(
            f"needs the embedded vLLM server: set {ENV_URL} to a running one (`agenttts serve`) "
            "or AGENTTTS_EMBEDDED=1 to start one (as `make test` does)"
        )
    server = EmbeddedServer()
    server.start()
    os.environ[ENV_URL] = server.base_url  # `base_url: embedded` in deployments resolves to it
    try:
        yield server.base_url
    finally:
        os.environ.pop(ENV_URL, None)
        server.stop()


def _postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL superuser on a throwaway cluster listening on 127.0.0.1 only (and a unix
    socket in its temp folder), stopped and deleted after the session. PostgreSQL refuses to run
    as root, so under root the cluster belongs to the `postgres` OS user. Trust authentication:
    nothing but this machine reaches it, and no password is written anywhere."""
    pytest.importorskip("psycopg", reason="needs the postgres extra: pip install -e '.[postgres]'")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip(
            "needs a PostgreSQL server: apt-get install -y postgresql (.ci/run does); no pg_ctl "
            "under /usr/lib/postgresql/*/bin or on PATH"
        )
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="agenttts-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("PostgreSQL refuses to run as root and there is no `postgres` OS user")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log, port = folder / "data", folder / "server.log", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "agenttts", "-A", "trust", "-E",
            "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            options, "start")  # fmt: skip
    except subprocess.CalledProcessError as e:
        tail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {e.stderr or e.stdout}\n{tail}")
    try:
        yield f"postgresql://agenttts@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server: str) -> Callable[[], str]:
    """A factory: each call creates a fresh, empty database on the session's server, its URL."""
    import psycopg

    def create() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return postgres_server.rsplit("/", 1)[0] + f"/{name}"

    return create


@pytest.fixture(params=["sqlite", "postgres"])
def checkpoint_db(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """A factory of fresh `--db` values by name: the test runs on a SQLite file, then again on a
    PostgreSQL database (skipped, saying why, where PostgreSQL is not installed)."""
    if request.param == "sqlite":
        return lambda name: str(tmp_path / f"{name}.sqlite")
    make: Callable[[], str] = request.getfixturevalue("postgres_db")
    return lambda name: make()


@pytest.fixture(autouse=True)
def _fresh_agent_endpoints() -> Iterator[None]:
    """Each test's agent endpoints start unknown: the client learns per URL what an endpoint
    refuses or how fast it writes, and test servers reuse ports."""
    yield
    from agenttts.llm import forget_endpoints

    forget_endpoints()
