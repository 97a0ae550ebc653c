"""`agenttts search / runs / show` as a user runs them: real processes, a real SQLite database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task

pytestmark = pytest.mark.integration

AGENTTTS = str(Path(sys.executable).with_name("agenttts"))


def agenttts(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([AGENTTTS, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture
def task(tmp_path: Path) -> str:
    return str(write_grid_task(tmp_path / "task"))


def test_search_then_runs_and_show(tmp_path, task):
    db = str(tmp_path / "runs.sqlite")
    out = agenttts(
        "search", task, "--thread", "a", "--db", db, "--proposer", "insight",
        "--batch-size", "3", "--max-iterations", "2", "--report-dir", str(tmp_path / "rep"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "init: " in out.stdout and "iteration 2:" in out.stdout
    assert "thread a: maximum iterations reached (2)" in out.stdout
    assert "best: retrieval=" in out.stdout and "test: " in out.stdout
    assert (tmp_path / "rep" / "a" / "report.md").exists()

    again = agenttts("search", task, "--thread", "a", "--db", db)
    assert again.returncode == 0 and "had already finished" in again.stdout

    runs = agenttts("runs", "--db", db)
    assert runs.returncode == 0
    header, row = runs.stdout.splitlines()[:2]
    assert header.split() == ["thread", "task", "proposer", "status", "iter", "trials", "best"]
    assert row.split()[:5] == ["a", task, "insight", "finished", "2"]

    show = agenttts("show", "a", "--db", db)
    assert show.returncode == 0
    assert "status: finished" in show.stdout and "guidelines:" in show.stdout
    assert "Preferred models (insight 1)" in show.stdout or "preferences:" in show.stdout
    state = json.loads(agenttts("show", "a", "--db", db, "--json").stdout)
    assert state["status"] == "finished" and state["archive"][0]["phase"] == "init"
    # derived trials are compact in the state; --json gives every field of every trial
    assert any(t["derived_from"] is not None for t in state["archive"])
    assert all("calls" in t and "completion_tokens" in t for t in state["archive"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proposer", "nope"], "unknown proposer 'nope'"),
        (["--batch-size", "0"], "batch_size must be at least 1"),
        (["--prompts", "/nonexistent/prompts"], "/nonexistent/prompts does not exist"),
        (["--no-insight", "4"], "invalid choice: 4"),
    ],
)
def test_bad_search_input_is_one_clear_error_before_anything_runs(tmp_path, task, args, message):
    db = tmp_path / "runs.sqlite"
    out = agenttts("search", task, "--db", str(db), *args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert "init:" not in out.stdout
    if db.exists():
        assert agenttts("runs", "--db", str(db)).stdout.startswith("no runs")


def test_bad_task_file_and_missing_database(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbudget: -1\n")
    out = agenttts("search", str(bad), "--db", str(tmp_path / "db"))
    assert out.returncode == 2 and "budget" in out.stderr and "Traceback" not in out.stderr
    missing = agenttts("runs", "--db", str(tmp_path / "none.sqlite"))
    assert missing.returncode == 2 and "no checkpoint database" in missing.stderr
    unknown = agenttts("show", "zz", "--db", str(tmp_path / "db"))
    assert unknown.returncode == 2


def test_resume_with_other_search_settings_is_refused(tmp_path, task):
    db = str(tmp_path / "runs.sqlite")
    common = ["search", task, "--thread", "b", "--db", db, "--report-dir", str(tmp_path / "r")]
    first = agenttts(*common, "--proposer", "insight", "--max-iterations", "1", "--quiet")
    assert first.returncode == 0, first.stderr
    out = agenttts(*common, "--proposer", "random")
    assert out.returncode == 2
    assert "proposer: the thread has 'insight', asked 'random'" in out.stderr


def test_one_agent_iteration_end_to_end_on_the_embedded_server(tmp_path, task, embedded_server):
    """The AgentTTS agent on a real local OpenAI-compatible server (vLLM CPU, SmolLM2): guidelines
    asked for, proposals parsed and screened, accepted ones executed; whatever a 135M model gets
    wrong is recorded, never a crash."""
    db = str(tmp_path / "runs.sqlite")
    out = agenttts(
        "search", task, "--thread", "llm", "--db", db, "--proposer", "agenttts",
        "--agent-base-url", embedded_server, "--max-iterations", "1", "--batch-size", "3",
        "--agent-timeout", "280", "--report-dir", str(tmp_path / "rep"), "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    state = json.loads(agenttts("show", "llm", "--db", db, "--json").stdout)
    assert state["status"] == "finished"
    assert state["stop_reason"] == "maximum iterations reached (1)"
    assert state["agent_usage"]["calls"] >= 2  # preferences, guidelines, proposal (with re-asks)
    assert state["agent_usage"]["completion_tokens"] > 0
    failed_nodes = {f["node"] for f in state["agent_failures"] if f["iteration"] == 1}
    assert state["guideline_log"] or "generate_guidelines" in failed_nodes
    searched = [t for t in state["archive"] if t["iteration"] == 1]
    for t in searched:  # every proposal that reached the archive was screened or executed
        assert t["status"] in {"ok", "rejected"}
        assert t["status"] == "ok" or t["error"]
    assert searched or "propose_trials" in failed_nodes or state["empty_proposals"] > 0
