"""What a thread accepts once started, through the CLI's runner and through the graph itself (a
Studio or HTTP run), and how `runs` shows a stopped one."""

from __future__ import annotations

import base64
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from agenttts.archive import Archive
from agenttts.environment.registry import make_executor
from agenttts.environment.task_loading import load_task
from agenttts.errors import InputError, ResumableStop
from agenttts.graph.context import Context
from agenttts.graph.graph import make_graph
from agenttts.graph.runner import (
    ended,
    list_runs,
    read_thread,
    run_search,
    status_of,
    thread_config,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from search_cli import comparable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "live"))
from openai_server import CannedServer, Reply


@pytest.fixture
def task_file(tmp_path: Path) -> str:
    return str(write_grid_task(tmp_path / "task"))


def settings(tmp_path: Path, **kw) -> dict:
    return {"proposer": "insight", "batch_size": 4, "report_dir": str(tmp_path / "r"), **kw}


def test_a_search_defining_setting_changed_over_the_graph_is_refused_like_the_cli(
    tmp_path, task_file
):
    ctx = settings(tmp_path, max_iterations=3)
    with SqliteSaver.from_conn_string(str(tmp_path / "db")) as saver:
        graph = make_graph(saver, interrupt_before=["execute_trials"])
        cfg = thread_config("studio")
        graph.invoke({"task": task_file}, cfg, context=ctx, durability="sync")
        before = graph.get_state(cfg)
        assert before.next == ("execute_trials",)
        with pytest.raises(InputError) as err:
            graph.invoke(None, cfg, context={**ctx, "proposer": "random"}, durability="sync")
        assert str(err.value) == (
            "thread 'studio' was started with other settings (proposer: the thread has "
            "'insight', asked 'random'); run it with its own settings or start another --thread"
        )
        assert graph.get_state(cfg).values["archive"] == before.values["archive"]
        # a limit is no search-defining setting: it may change
        graph.invoke(None, cfg, context={**ctx, "max_iterations": 1}, durability="sync")
        assert graph.get_state(cfg).values["archive"] != before.values["archive"]


def test_a_bad_prompts_folder_stops_a_graph_run_at_its_first_node(tmp_path, task_file):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "proposal.txt").write_text("{task} {archive} {budgett}")
    with SqliteSaver.from_conn_string(str(tmp_path / "db")) as saver:
        graph = make_graph(saver)
        ctx = settings(tmp_path, prompts_dir=str(prompts))
        with pytest.raises(InputError, match=r"unknown placeholder \{budgett\}"):
            graph.invoke({"task": task_file}, thread_config("t"), context=ctx)


def test_grid_is_not_stopped_by_patience_and_reaches_the_optimum(tmp_path):
    task_file = str(write_grid_task(tmp_path / "task", budget=300))
    task = load_task(task_file)
    optimum = make_executor(task).optimum("train")  # type: ignore[attr-defined]
    out = run_search(
        task_file,
        "grid",
        tmp_path / "db",
        settings(tmp_path, proposer="grid", batch_size=50, max_iterations=100, patience=1),
    )
    assert out.values["stop_reason"].startswith("the proposer offered nothing new")
    assert len(out.trials.executed()) == optimum.feasible
    assert out.best is not None and out.best.score == optimum.score


def test_a_finished_thread_continues_when_its_limit_is_raised(tmp_path, task_file):
    db = tmp_path / "db"
    first = run_search(task_file, "t", db, settings(tmp_path, max_iterations=1, patience=None))
    assert first.values["stop_reason"] == "maximum iterations reached (1)"
    same = run_search(task_file, "t", db, {})
    assert not same.ran  # the recorded limits still hold: nothing to do
    more = run_search(task_file, "t", db, {"max_iterations": 3})
    assert more.ran and more.values["stop_reason"] == "maximum iterations reached (3)"
    before, after = Archive.from_state(first.values), Archive.from_state(more.values)
    assert list(after)[: len(before)] == list(before)
    assert [t.trial_id for t in after] == list(range(len(after))) and len(after) > len(before)
    assert more.values["test_result"] and Path(more.values["report"]["markdown"]).exists()
    [run] = list_runs(db)
    assert run.status == "finished" and run.iteration == 3


def test_runs_shows_a_stop_in_one_short_line(tmp_path, task_file, monkeypatch):
    monkeypatch.delenv("AGENTTTS_EMBEDDED_URL", raising=False)
    db = tmp_path / "db"
    unreachable = {"proposer": "agenttts", "agent_base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(Exception, match="could not be reached"):
        run_search(task_file, "s", db, settings(tmp_path, **unreachable))
    [run] = list_runs(db)
    assert (
        run.status.startswith("stopped in ") and ": agent endpoint http://127.0.0.1:9" in run.status
    )
    assert len(run.status) <= 100 and "ResumableStop(" not in run.status
    assert run.error is not None and run.error.endswith(
        "could not be reached: OpenAIConnectionError"
    )


class CheckpointLost(Exception):
    pass


class LosesACheckpoint(SqliteSaver):
    """Fault injection: the `lost`-th checkpoint is never written, as when a process dies after
    a step's node saved its result (LangGraph's task writes) and before the step's checkpoint."""

    def __init__(self, conn: Any, lost: int) -> None:
        super().__init__(conn)
        self.lost, self.puts = lost, 0

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self.puts += 1
        if self.puts == self.lost:
            raise CheckpointLost
        return super().put(*args, **kwargs)


@pytest.mark.parametrize(
    ("lost", "after"), [(2, "__start__"), (3, "init_trials")], ids=["input", "init-trials"]
)
def test_a_thread_with_results_but_no_checkpoint_after_them_resumes_not_ends(
    tmp_path, task_file, lost, after
):
    """LangGraph lists no next node for such a thread, as for a finished one; the runner took it
    for finished and "continued it under new limits" from the stop check, skipping the nodes in
    between (one iteration off from then on)."""
    overrides = settings(tmp_path, max_iterations=3)
    reference = run_search(task_file, "t", tmp_path / "ref.db", overrides)
    db = tmp_path / "killed.db"
    inputs = {"task": task_file, "settings": Context.from_dict(overrides).to_dict()}
    with sqlite3.connect(db, check_same_thread=False) as conn:
        graph = make_graph(LosesACheckpoint(conn, lost))
        with pytest.raises(CheckpointLost):
            graph.invoke(inputs, thread_config("t"), context=overrides, durability="sync")
    snap = read_thread(db, "t")
    assert not snap.next and snap.tasks[0].name == after  # what LangGraph reports
    assert not ended(snap) and status_of(snap) == f"resumable after {after}"
    resumed = run_search(task_file, "t", db, overrides)
    assert resumed.resumed and resumed.finished
    assert comparable(resumed.values) == comparable(reference.values)


def test_a_password_in_the_agent_url_is_used_but_never_stored_or_printed(tmp_path, task_file):
    """`--agent-base-url http://user:secret@host/v1` was kept verbatim in the checkpoint's
    settings and report.json, and printed in error lines: masked everywhere, as the PostgreSQL
    URL is, and asked for again when the thread resumes."""
    db = tmp_path / "db.sqlite"
    agent = {"proposer": "agenttts", "agent_model": "canned", "max_iterations": 1}
    with CannedServer([Reply("no JSON here")]) as srv:  # unusable: recorded, the insight tops up
        url = srv.url.replace("http://", "http://agent:s3cret@")
        out = run_search(task_file, "p", db, settings(tmp_path, agent_base_url=url, **agent))
        used = {h.get("Authorization") for h in srv.headers}
        assert used == {f"Basic {base64.b64encode(b'agent:s3cret').decode()}"}  # it connected so
        with pytest.raises(InputError, match=r"a thread records no password.*--agent-base-url"):
            run_search(task_file, "p", db, {"max_iterations": 2})  # the URL is not in the thread
        again = run_search(task_file, "p", db, {"max_iterations": 2, "agent_base_url": url})
    assert out.finished and again.resumed and again.finished
    assert again.values["settings"]["agent_base_url"] == url.replace("s3cret", "***")
    written = [db, *tmp_path.glob("db.sqlite-*"), *(tmp_path / "r").rglob("*.*")]
    assert len(written) > 3 and not [f for f in written if b"s3cret" in f.read_bytes()]
    dead = "http://agent:s3cret@127.0.0.1:9/v1"
    with pytest.raises(ResumableStop) as stop:
        run_search(task_file, "q", db, settings(tmp_path, agent_base_url=dead, **agent))
    assert "agent endpoint http://agent:***@127.0.0.1:9/v1 could not be reached" in str(stop.value)
    assert "s3cret" not in str(stop.value) and "s3cret" not in str(list_runs(db))
