"""`langgraph dev` serves the shipped langgraph.json offline with no key; a search runs through its
HTTP API on a grid-replay task, and a run can be stepped, its guidelines edited, and resumed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = str(Path(sys.executable).with_name("langgraph"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    if not Path(LANGGRAPH).exists():
        pytest.skip("langgraph-cli is not installed (pip install -e '.[studio]')")
    port = free_port()
    log = tmp_path_factory.mktemp("langgraph") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.endswith("API_KEY")}  # no key at all
    env.update(LANGGRAPH_CLI_NO_ANALYTICS="1", LANGGRAPH_NO_VERSION_CHECK="true")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [LANGGRAPH, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Graph 'agenttts' failed to load" not in log.read_text()


def context(tmp_path: Path, **kw) -> dict:
    return {"proposer": "insight", "batch_size": 3, "report_dir": str(tmp_path / "r"), **kw}


def new_thread(client: httpx.Client) -> str:
    return client.post("/threads", json={}).raise_for_status().json()["thread_id"]


def test_a_search_runs_to_its_end_through_the_http_api(server, tmp_path):
    task = str(write_grid_task(tmp_path / "task"))
    with httpx.Client(base_url=server, timeout=120) as client:
        tid = new_thread(client)
        final = client.post(
            f"/threads/{tid}/runs/wait",
            json={"assistant_id": "agenttts", "input": {"task": task},
                  "context": context(tmp_path, max_iterations=2)},
        ).raise_for_status().json()  # fmt: skip
        state = client.get(f"/threads/{tid}/state").raise_for_status().json()
    assert final["stop_reason"] == "maximum iterations reached (2)"
    assert state["next"] == [] and state["values"]["stop_reason"] == final["stop_reason"]
    assert final["settings"]["proposer"] == "insight"
    ids = [t["trial_id"] for t in final["archive"]]
    assert ids == list(range(len(ids))) and len(ids) >= 3
    assert final["test_result"]["split"] == "test"
    assert Path(final["report"]["markdown"]).exists()
    assert Path(final["report"]["json"]).parent.name == tid


def test_step_edit_guidelines_and_resume_through_the_http_api(server, tmp_path):
    task = str(write_grid_task(tmp_path / "task"))
    with httpx.Client(base_url=server, timeout=120) as client:
        tid = new_thread(client)
        ctx = context(tmp_path, max_iterations=2, patience=None)
        client.post(
            f"/threads/{tid}/runs/wait",
            json={"assistant_id": "agenttts", "input": {"task": task}, "context": ctx,
                  "interrupt_before": ["execute_trials"]},
        ).raise_for_status()  # fmt: skip
        paused = client.get(f"/threads/{tid}/state").raise_for_status().json()
        assert paused["next"] == ["execute_trials"]
        assert paused["values"]["iteration"] == 1 and paused["values"]["pending"]
        executed_before = len(paused["values"]["archive"])

        edited = "EDITED IN STUDIO: favour more QA samples"
        client.post(
            f"/threads/{tid}/state", json={"values": {"guidelines": edited}}
        ).raise_for_status()
        assert client.get(f"/threads/{tid}/state").json()["values"]["guidelines"] == edited

        client.post(
            f"/threads/{tid}/runs/wait",
            json={"assistant_id": "agenttts", "input": None, "context": ctx,
                  "interrupt_before": ["execute_trials"]},
        ).raise_for_status()  # fmt: skip
        second = client.get(f"/threads/{tid}/state").json()
        assert second["next"] == ["execute_trials"] and second["values"]["iteration"] == 2
        assert len(second["values"]["archive"]) > executed_before  # iteration 1 ran once

        client.post(
            f"/threads/{tid}/runs/wait",
            json={"assistant_id": "agenttts", "input": None, "context": ctx},
        ).raise_for_status()  # fmt: skip
        final = client.get(f"/threads/{tid}/state").json()
    assert final["next"] == []
    assert final["values"]["stop_reason"] == "maximum iterations reached (2)"
    ids = [t["trial_id"] for t in final["values"]["archive"]]
    assert ids == list(range(len(ids)))


def test_a_bad_setting_over_http_gets_the_cli_message(server, tmp_path):
    """The first node checks the context, so a Studio or HTTP run fails as `agenttts search`
    does: one message naming every problem, and nothing run."""
    task = str(write_grid_task(tmp_path / "task"))
    with httpx.Client(base_url=server, timeout=120) as client:
        tid = new_thread(client)
        out = client.post(
            f"/threads/{tid}/runs/wait",
            json={"assistant_id": "agenttts", "input": {"task": task},
                  "context": context(tmp_path, batch_size=0, no_insights=[4])},
        ).raise_for_status().json()  # fmt: skip
        state = client.get(f"/threads/{tid}/state").raise_for_status().json()
    assert out["__error__"] == {
        "error": "InputError",
        "message": "batch_size must be at least 1; no_insights may hold only 1, 2, 3 (got [4])",
    }
    assert state["next"] == ["init_trials"] and state["values"]["archive"] == []


def test_studio_context_panel_shows_every_setting_with_its_description_and_default(server):
    """What Studio's context panel renders: the assistant's context schema, which LangGraph takes
    from the pydantic `Context` (descriptions, defaults, bounds, the insights' choices)."""
    from agenttts.graph.context import Context, default_of, description_of

    with httpx.Client(base_url=server, timeout=60) as client:
        [assistant] = (
            client.post("/assistants/search", json={"graph_id": "agenttts"})
            .raise_for_status()
            .json()
        )
        schemas = client.get(f"/assistants/{assistant['assistant_id']}/schemas").json()
    panel = schemas["context_schema"]["properties"]
    assert list(panel) == list(Context.model_fields)
    for name, field in panel.items():
        assert field["description"] == description_of(name), name
        assert field.get("default", []) == default_of(name), name
    assert panel["batch_size"]["minimum"] == 1
    assert panel["agent_temperature"]["maximum"] == 2
    assert panel["no_insights"]["items"]["enum"] == [1, 2, 3]
