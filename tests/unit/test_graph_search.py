"""The whole search graph on a grid-replay task, in process, with a real SQLite checkpointer."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from agenttts.archive import Archive, Trial
from agenttts.environment.space import Config, cheapest_config, config_cost
from agenttts.environment.task_loading import load_task
from agenttts.errors import InputError
from agenttts.graph.context import Context
from agenttts.graph.graph import make_graph
from agenttts.graph.runner import list_runs, read_thread, run_search, thread_config
from agenttts.proposers import PROPOSERS
from agenttts.proposers.base import Guidelines, Proposal, Proposer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task


@pytest.fixture
def task_file(tmp_path: Path) -> str:
    return str(write_grid_task(tmp_path / "task"))


def settings(tmp_path: Path, **kw) -> dict:
    return {"proposer": "insight", "batch_size": 4, "report_dir": str(tmp_path / "reports"), **kw}


class SameOne(Proposer):
    """Always proposes the same configuration: nothing new from the second iteration on."""

    name = "same-one"

    def propose(self, ctx):
        return Proposal(configs=[cheapest_config(ctx.task)])


class Echo(Proposer):
    """Guidelines that show what the previous ones were (to see a Studio edit arrive)."""

    name = "echo"

    def guidelines(self, ctx):
        return Guidelines(text=f"iteration {ctx.iteration}; before: {ctx.guidelines}")

    def propose(self, ctx):
        s = ctx.task.stages
        return Proposal(
            configs=[
                Config.of(
                    {s[0].name: (s[0].models[0].name, ctx.iteration), s[1].name: ("qa-3b", 1)}
                )
            ]
        )


@pytest.fixture
def local_proposers(monkeypatch):
    monkeypatch.setitem(PROPOSERS, "same-one", f"{__name__}:SameOne")
    monkeypatch.setitem(PROPOSERS, "echo", f"{__name__}:Echo")


def test_search_runs_to_a_recorded_stop_with_a_consistent_archive(tmp_path, task_file):
    db = tmp_path / "runs.sqlite"
    out = run_search(task_file, "t", db, settings(tmp_path, max_iterations=3, patience=None))
    task = load_task(task_file)
    assert out.finished and out.ran and not out.resumed
    v = out.values
    assert v["stop_reason"] == "maximum iterations reached (3)"
    trials = Archive.from_state(v)
    assert [t.trial_id for t in trials] == list(range(len(trials)))
    executed = [t for t in trials if t.status != "rejected"]
    assert len({t.config.key() for t in executed}) == len(executed)
    assert {t.iteration for t in trials} == {0, 1, 2, 3}
    init = [t for t in trials if t.phase == "init"]
    assert init and all(t.iteration == 0 for t in init)
    for t in executed:
        assert t.status == "ok" and t.split == "train"
        assert 0 < t.nominal_cost <= task.budget
        assert t.nominal_cost == pytest.approx(config_cost(task, t.config))
    assert v["guidelines"] and len(v["guideline_log"]) == 3
    assert v["pending"] == []
    # the best training configuration, once on the test split
    best = trials.best()
    assert best is not None
    test = Trial.model_validate(v["test_result"])
    assert test.phase == "test" and test.split == "test" and test.config == best.config
    report = json.loads(Path(v["report"]["json"]).read_text())
    assert report["best"]["trial_id"] == best.trial_id
    assert report["test"]["score"] == test.score
    assert report["trajectory"]["best_so_far"][-1] == best.score
    assert Path(v["report"]["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(v["report"]["json"]).parent == tmp_path / "reports" / "t"


def test_a_finished_thread_runs_nothing_again(tmp_path, task_file):
    db = tmp_path / "runs.sqlite"
    first = run_search(task_file, "t", db, settings(tmp_path, max_iterations=2))
    again = run_search(task_file, "t", db, {})
    assert again.resumed and not again.ran and again.finished
    assert again.values["archive"] == first.values["archive"]
    assert again.settings.proposer == "insight"  # recorded settings, not the defaults
    [run] = list_runs(db)
    assert (run.thread_id, run.proposer, run.status) == ("t", "insight", "finished")
    assert run.trials == len(first.trials.executed())


def test_resume_refuses_another_search_or_task(tmp_path, task_file):
    db = tmp_path / "runs.sqlite"
    run_search(task_file, "t", db, settings(tmp_path, max_iterations=1))
    with pytest.raises(InputError, match="seed"):
        run_search(task_file, "t", db, {"seed": 7})
    other = write_grid_task(tmp_path / "other")
    with pytest.raises(InputError, match="searches task"):
        run_search(str(other), "t", db, {})


def test_bad_settings_fail_before_any_checkpoint(tmp_path, task_file):
    db = tmp_path / "runs.sqlite"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"proposer": "nope"}, "unknown proposer"),
        ({"batch_size": 0}, "batch_size"),
        ({"no_insights": [4]}, "no_insights"),
        ({"prompts_dir": str(tmp_path / "missing")}, "prompts_dir"),
    ]
    for bad, msg in cases:
        with pytest.raises(InputError, match=msg):
            run_search(task_file, "t", db, settings(tmp_path, **bad))
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0


def test_a_bad_context_given_as_a_dict_stops_at_the_first_node_with_the_cli_message(
    tmp_path, task_file
):
    """What a Studio or HTTP run does: the context arrives as a dict, LangGraph builds the
    Context from it, and the first node refuses it with the text the CLI prints."""
    bad = settings(tmp_path, batch_size=0, no_insights=[4], seed="7")
    expected = "; ".join(Context.from_dict(bad).problems())
    assert "batch_size must be at least 1" in expected and "seed must be of type int" in expected
    cfg = thread_config("studio")
    with SqliteSaver.from_conn_string(str(tmp_path / "db")) as saver:
        graph = make_graph(saver)
        with pytest.raises(InputError) as err:
            graph.invoke({"task": task_file}, cfg, context=bad, durability="sync")
        assert str(err.value) == expected
        snap = graph.get_state(cfg)
    assert snap.next == ("init_trials",) and not snap.values.get("archive")


def test_stops_at_the_target(tmp_path, task_file):
    out = run_search(task_file, "t", tmp_path / "db", settings(tmp_path, target=0.3))
    assert out.values["stop_reason"].startswith("target reached")
    assert out.values["iteration"] == 1


def test_stops_when_the_proposer_has_nothing_new(tmp_path, task_file, local_proposers):
    out = run_search(task_file, "t", tmp_path / "db", settings(tmp_path, proposer="same-one"))
    assert out.values["stop_reason"].startswith("the proposer offered nothing new 2")
    assert out.values["iteration"] == 3
    assert len(out.trials) == 1  # the one configuration ran once; its repeats were not re-run


@pytest.mark.parametrize(
    "ablation", [{"no_insights": [1]}, {"proposer": "insight-no1"}], ids=["setting", "variant"]
)
def test_ablating_insight_1_skips_the_initialisation(tmp_path, task_file, ablation):
    out = run_search(
        task_file, "t", tmp_path / "db", settings(tmp_path, max_iterations=1, **ablation)
    )
    assert out.trials and not [t for t in out.trials if t.phase == "init"]
    assert not out.values.get("preferences")


def test_step_through_edit_guidelines_and_resume(tmp_path, task_file, local_proposers):
    """What Studio does: pause before execute_trials, edit the guidelines, resume."""
    ctx = Context(proposer="echo", max_iterations=2, patience=None, report_dir=str(tmp_path / "r"))
    cfg = thread_config("s")
    with SqliteSaver.from_conn_string(str(tmp_path / "db")) as saver:
        graph = make_graph(saver, interrupt_before=["execute_trials"])
        graph.invoke({"task": task_file}, cfg, context=ctx, durability="sync")
        snap = graph.get_state(cfg)
        assert snap.next == ("execute_trials",)
        assert snap.values["guidelines"] == "iteration 1; before: None"
        assert len(snap.values["pending"]) == 1
        graph.update_state(cfg, {"guidelines": "EDITED: explore retrieval samples"})
        graph.invoke(None, cfg, context=ctx, durability="sync")  # runs iteration 1, pauses in 2
        snap = graph.get_state(cfg)
        assert snap.next == ("execute_trials",)
        assert snap.values["guidelines"] == "iteration 2; before: EDITED: explore retrieval samples"
        graph.invoke(None, cfg, context=ctx, durability="sync")
        final = graph.get_state(cfg)
    assert not final.next and final.values["stop_reason"] == "maximum iterations reached (2)"
    assert [t["config"]["retrieval"]["samples"] for t in final.values["archive"]] == [1, 2]
    assert final.values["settings"]["proposer"] == "echo"  # recorded by the first node


def test_show_reads_back_a_thread(tmp_path, task_file):
    db = tmp_path / "db"
    run_search(task_file, "t", db, settings(tmp_path, max_iterations=1))
    snap = read_thread(db, "t")
    assert snap.values["stop_reason"]
    with pytest.raises(InputError, match="no thread"):
        read_thread(db, "missing")
    with pytest.raises(InputError, match="no checkpoint database"):
        read_thread(tmp_path / "nope.sqlite", "t")
