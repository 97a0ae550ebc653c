"""A dead embedded server is named with its log's error lines, and restarted on resume.

The server process is a real subprocess, but not vLLM: the fault-injecting OpenAI-compatible
server stands in (this unit is the manager's bookkeeping, not inference), killed with SIGKILL as
vLLM's engine dies on an internal error.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from agenttts.environment import embedded
from agenttts.environment.embedded import (
    ENV_URL,
    EmbeddedServer,
    dead_server_note,
    embedded_base_url,
    free_port,
    log_excerpt,
)

FAULT_SERVER = Path(__file__).resolve().parents[1] / "fixtures" / "live" / "openai_server.py"
CRASH = "RuntimeError: CPU Generator does not use offset"


class StandIn(EmbeddedServer):
    """The manager around a small OpenAI-compatible server instead of vLLM."""

    def command(self, python: str, model_dir: Path) -> list[str]:
        requests = self.log_path.with_suffix(".requests")
        return [
            *(python, str(FAULT_SERVER), "--log", str(requests)),
            *("--port", str(self.port), "--models", "smollm2"),
        ]


@pytest.fixture
def standin(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTTTS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(ENV_URL, raising=False)
    # A real embedded server the test session started in this process stays out of sight.
    monkeypatch.setattr(embedded, "_LIVE", set())
    monkeypatch.setattr(embedded, "_SHARED", None)
    monkeypatch.setattr(embedded, "server_python", lambda: sys.executable)
    monkeypatch.setattr(embedded, "converted_model", lambda python=None: tmp_path)
    server = StandIn(startup_timeout=60)
    yield server
    server.stop()


def _crash(server: EmbeddedServer) -> None:
    with open(server.log_path, "a") as f:  # what vLLM's worker writes before the engine dies
        f.write(f"(Worker pid=1) ERROR 11-24 01:43:53 [multiproc_executor.py:1063] {CRASH}\n")
        f.write("(APIServer pid=2) INFO 11-24 01:43:54 [launcher.py:110] Shutting down\n")
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


def test_a_dead_server_is_named_with_its_error_and_restarted_on_the_same_port(standin):
    standin.start()
    url = standin.base_url
    assert standin.alive and standin.death_note() is None and dead_server_note() is None
    assert embedded_base_url() == url

    _crash(standin)
    assert not standin.alive
    note = dead_server_note()
    assert note is not None and f"port {standin.port} died" in note
    assert CRASH in note and str(standin.log_path) in note
    # Without start, the caller gets the URL (its request fails, and the stop says why) ...
    assert embedded_base_url() == url
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/models", timeout=3)
    # ... with start (the resume), the same server comes back on the same port.
    assert embedded_base_url(start=True) == url
    assert standin.alive and dead_server_note() is None
    assert httpx.get(f"{url}/models", timeout=10).status_code == 200
    assert CRASH in standin.log_path.with_suffix(".previous.log").read_text()  # kept for reading


def test_a_silent_server_named_by_the_environment_is_reported_from_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTTTS_CACHE_DIR", str(tmp_path))
    port = free_port()  # nothing listens there
    monkeypatch.setenv(ENV_URL, f"http://127.0.0.1:{port}/v1")
    assert dead_server_note() is None  # no log of `agenttts serve` for that port: say nothing
    (tmp_path / f"server-{port}.log").write_text(f"starting\nERROR x] {CRASH}\nshutdown\n")
    note = dead_server_note()
    assert note is not None and CRASH in note and f"agenttts serve --port {port}" in note


def test_the_log_excerpt_keeps_the_cause_above_a_long_shutdown(tmp_path):
    log = tmp_path / "server.log"
    lines = ["start", f"(Worker) ERROR [x.py:1] {CRASH}", "Traceback ..."] + [
        f"(APIServer) INFO [y.py:2] shutting down {i}" for i in range(50)
    ]
    log.write_text("\n".join(lines) + "\n")
    text = log_excerpt(log)
    assert CRASH in text and "shutting down 49" in text and "shutting down 10" not in text
    assert log_excerpt(tmp_path / "missing.log") == "(no log)"


def test_a_search_whose_embedded_agent_died_stops_saying_why(standin, tmp_path):
    from agenttts.errors import ResumableStop
    from agenttts.graph.runner import run_search

    standin.start()
    _crash(standin)
    settings = {"proposer": "agenttts", "agent_base_url": "embedded", "report_dir": str(tmp_path)}
    with pytest.raises(ResumableStop) as stop:
        run_search("sim-2wiki", "t", tmp_path / "db.sqlite", settings)
    text = str(stop.value)
    assert f"port {standin.port} died" in text and CRASH in text
    assert "run the same command again" in text
