"""How the growing lists are stored: each trial once (LangGraph's delta channel), read back whole,
replaceable with `Overwrite`, on SQLite and PostgreSQL; and a thread written with the old layout
(the whole list in every checkpoint) resumes under the new one."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Overwrite

from agenttts.archive import Archive
from agenttts.graph.context import Context
from agenttts.graph.graph import make_graph
from agenttts.graph.runner import run_search, thread_config
from agenttts.graph.state import GROWING
from agenttts.graph.storage import open_checkpointer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from whole_list_layout import whole_list

pytestmark = pytest.mark.integration


def context(tmp_path: Path, **kw: Any) -> Context:
    return Context.from_dict(
        {"proposer": "insight", "batch_size": 3, "report_dir": str(tmp_path / "r"), **kw}
    )


def seen(trials: Archive) -> list[tuple[int, str, float | None]]:
    """What a search found, without the times it took."""
    return [(t.trial_id, t.config.key(), t.score) for t in trials]


def test_each_trial_is_stored_once_and_read_back_whole(tmp_path, checkpoint_db):
    task, db = str(write_grid_task(tmp_path / "task")), checkpoint_db("layout")
    out = run_search(task, "t", db, context(tmp_path, max_iterations=3).to_dict())
    assert len(out.trials) > 6 and len(out.values["guideline_log"]) == 3
    cfg = thread_config("t")
    with open_checkpointer(db, create=False) as saver:
        stored = list(saver.list({"configurable": {"thread_id": "t"}}))
        snap = make_graph(saver).get_state(cfg)
    for c in stored:  # no checkpoint holds a growing list: only the steps' writes do
        assert not set(GROWING) & set(c.checkpoint["channel_values"])
    oldest_first = reversed(stored)
    written = [v for c in oldest_first for _, ch, v in c.pending_writes or () if ch == "archive"]
    assert [t["trial_id"] for batch in written for t in batch] == [
        t.trial_id for t in out.trials
    ]  # every trial written once, in order
    assert snap.values["archive"] == out.values["archive"]
    assert snap.values["guideline_log"] == out.values["guideline_log"]


def test_no_checkpoint_holds_a_whole_list_however_often_langgraph_snapshots(
    tmp_path, checkpoint_db
):
    """LangGraph snapshots a delta channel's whole list every `snapshot_frequency` appends (and
    every 5,000 supersteps): at 10,000 trials one checkpoint held the whole archive. Here it is
    asked to at every append; the checkpointer keeps none, every checkpoint stays as small as its
    step, and the thread still reads back whole, also after a resume."""
    task, db = str(write_grid_task(tmp_path / "task")), checkpoint_db("bounded")
    ctx, cfg = context(tmp_path, max_iterations=4, patience=None), thread_config("b")
    with open_checkpointer(db) as saver:
        graph = make_graph(saver, interrupt_before=["propose_trials"])
        for name in GROWING:
            graph.channels[name].snapshot_frequency = 1
        graph.invoke({"task": task, "settings": ctx.to_dict()}, cfg, context=ctx, durability="sync")
        while graph.get_state(cfg).next:  # paused at every iteration, resumed from storage
            graph.invoke(None, cfg, context=ctx, durability="sync")
        stored = list(saver.list({"configurable": {"thread_id": "b"}}))
        values = graph.get_state(cfg).values
    straight = run_search(task, "ref", tmp_path / "ref.sqlite", ctx.to_dict())
    assert len(values["archive"]) > 10 and len(values["guideline_log"]) == 4
    assert seen(Archive.from_state(values)) == seen(straight.trials)
    assert values["guideline_log"] == straight.values["guideline_log"]
    for c in stored:
        assert not GROWING & set(c.checkpoint["channel_values"]), c.metadata


def test_a_thread_longer_than_sqlites_parameter_limit_reads_back_whole(tmp_path):
    """With no snapshot, reading a thread walks all its checkpoints; LangGraph's SQLite query
    binds one parameter per checkpoint and list, which a long thread can run past (32,766 in
    upstream SQLite builds; here lowered to 10)."""
    task, db = str(write_grid_task(tmp_path / "task")), str(tmp_path / "long.sqlite")
    out = run_search(task, "l", db, context(tmp_path, max_iterations=3).to_dict())
    with open_checkpointer(db, create=False) as saver:
        assert isinstance(saver, SqliteSaver)
        saver.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)
        values = make_graph(saver).get_state(thread_config("l")).values
    assert values["archive"] == out.values["archive"] and len(out.trials) > 6


def test_a_fork_off_an_earlier_checkpoint_keeps_its_own_archive(tmp_path, checkpoint_db):
    """An update on an earlier checkpoint (Studio's time travel) starts a branch: the trials
    written from that checkpoint went to the other branch and are not replayed into this one."""
    task, db = str(write_grid_task(tmp_path / "task")), checkpoint_db("fork")
    ctx, cfg = context(tmp_path, max_iterations=2, patience=None), thread_config("f")
    with open_checkpointer(db) as saver:
        graph = make_graph(saver)
        graph.invoke({"task": task, "settings": ctx.to_dict()}, cfg, context=ctx, durability="sync")
        before = next(s for s in graph.get_state_history(cfg) if s.next == ("execute_trials",))
        fork = graph.update_state(before.config, {"guidelines": "edited"})
        forked = graph.get_state(fork).values
    assert forked["archive"] == before.values["archive"]
    assert forked["guidelines"] == "edited"


def test_overwrite_replaces_the_archive_and_the_search_appends_after_it(tmp_path, checkpoint_db):
    """Studio's edit of a growing list: `Overwrite` (typed, or its JSON form over HTTP)."""
    task, db = str(write_grid_task(tmp_path / "task")), checkpoint_db("edit")
    ctx, cfg = context(tmp_path, max_iterations=2, patience=None), thread_config("s")
    with open_checkpointer(db) as saver:
        graph = make_graph(saver, interrupt_before=["execute_trials"])
        graph.invoke({"task": task}, cfg, context=ctx, durability="sync")
        init = graph.get_state(cfg).values["archive"]
        assert len(init) >= 3
        graph.update_state(cfg, {"archive": Overwrite(value=init[:2])})
        assert graph.get_state(cfg).values["archive"] == init[:2]
        graph.update_state(cfg, {"archive": {"__overwrite__": init[:1]}})  # as JSON sends it
        assert graph.get_state(cfg).values["archive"] == init[:1]
        graph.invoke(None, cfg, context=ctx, durability="sync")  # iteration 1 runs, 2 pauses
        archive = Archive.from_state(graph.get_state(cfg).values)
    assert archive[0].model_dump() == Archive(init[:1])[0].model_dump()
    assert [t.trial_id for t in archive] == list(range(len(archive))) and len(archive) > 1
    assert {t.iteration for t in archive[1:]} == {1}


def test_a_thread_of_the_whole_list_layout_resumes_with_the_same_archive(tmp_path):
    task, db = str(write_grid_task(tmp_path / "task")), str(tmp_path / "db.sqlite")
    ctx, cfg = context(tmp_path, max_iterations=3, patience=None), thread_config("old")
    with open_checkpointer(db) as saver:  # started by the old layout, stopped mid-search
        old = whole_list(make_graph(saver, interrupt_before=["execute_trials"]))
        old.invoke({"task": task}, cfg, context=ctx, durability="sync")
        old.invoke(None, cfg, context=ctx, durability="sync")
        held = old.get_state(cfg).values["archive"]
        assert any(t["iteration"] == 1 for t in held)
    resumed = run_search(task, "old", db, {})
    straight = run_search(task, "new", tmp_path / "ref.sqlite", ctx.to_dict())
    assert resumed.resumed and resumed.finished
    assert resumed.values["archive"][: len(held)] == held
    assert seen(resumed.trials) == seen(straight.trials)
