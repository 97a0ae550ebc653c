"""The initial trials are checkpointed before the agent is asked for its preferences: with the
agent unreachable at that step a real `agenttts search` stops with exit 3 and its thread already
holds them; the same command once the agent answers (the real embedded server, behind a port
forwarder on the port the command names) asks for the preferences without re-running them."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from search_cli import AGENTTTS, finished_state

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def forwarder(port: int, target: str) -> Iterator[None]:
    """127.0.0.1:`port` -> the host and port of URL `target`, byte for byte (the agent is back)."""
    dest = urlsplit(target)
    listener = socket.create_server(("127.0.0.1", port))

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        # the first direction to end closes both sockets: the other's next call fails, its end
        with suppress(OSError), src, dst:
            while data := src.recv(65536):
                dst.sendall(data)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            upstream = socket.create_connection((dest.hostname, dest.port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield
    finally:
        listener.close()


def test_unreachable_agent_at_preferences_keeps_the_initial_trials(tmp_path, embedded_server):
    task = write_grid_task(tmp_path / "task")
    db = str(tmp_path / "runs.sqlite")
    port = free_port()
    cmd = [
        AGENTTTS, "search", str(task), "--thread", "k", "--db", db, "--proposer", "agenttts",
        "--agent-base-url", f"http://127.0.0.1:{port}/v1", "--agent-max-tokens", "64",
        "--agent-timeout", "900",  # the shared CPU server can be slow; unreachable is immediate
        "--max-iterations", "1", "--batch-size", "1", "--seed", "3",
        "--report-dir", str(tmp_path / "reports"), "--quiet",
    ]  # fmt: skip

    stopped = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 3, stopped.stderr
    assert "once the agent endpoint is reachable" in stopped.stderr
    saved = finished_state(db)
    init = [t for t in saved["archive"] if t["phase"] == "init"]
    assert len(init) >= 2 and init == saved["archive"]
    assert not saved.get("preferences")

    with forwarder(port, embedded_server):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr
    final = finished_state(db)
    # the very same records (wall times included): kept, not run again
    assert [t for t in final["archive"] if t["phase"] == "init"] == init
    assert final["agent_usage"]["calls"] >= 1  # the agent was asked on the resume
