"""propose_trials and the loop around it: bad proposals are recorded, never crash, never re-run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from langgraph.runtime import Runtime

from agenttts.archive import Trial
from agenttts.environment.space import Config, config_cost
from agenttts.environment.task_loading import load_task
from agenttts.errors import ResumableStop
from agenttts.graph.context import Context
from agenttts.graph.runner import read_thread, run_search
from agenttts.graph.state import State
from agenttts.llm import AgentUsage
from agenttts.nodes.propose_trials import propose_trials
from agenttts.proposers import PROPOSERS
from agenttts.proposers.base import Guidelines, Proposal, Proposer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task

GOOD = {"retrieval": ("r-7b", 2), "qa": ("qa-3b", 3)}


class Mixed(Proposer):
    """A batch with everything an agent gets wrong, plus one good and one archived config."""

    name = "mixed"

    def propose(self, ctx):
        return Proposal(
            configs=[
                Config.of({"retrieval": ("r-72b", 16), "qa": ("qa-70b", 16)}),  # over budget
                Config.of({"retrieval": ("gpt-9", 1), "qa": ("qa-3b", 1)}),  # unknown model
                Config.of({"retrieval": ("r-7b", 99), "qa": ("qa-3b", 1)}),  # samples out of range
                Config.of({"retrieval": ("r-7b", 1)}),  # a stage missing
                Config.of(GOOD),
                Config.of({"retrieval": ("r-7b", 1), "qa": ("qa-3b", 1)}),  # already archived
                Config.of(GOOD),  # repeated within the batch
            ],
            rationale="because",
            usage=AgentUsage(calls=2, prompt_tokens=100, completion_tokens=50, failures=1),
            errors=["attempt 1: the answer contains no JSON object"],
        )


class Raising(Proposer):
    """A proposer that blows up: recorded as a failure; the loop goes on."""

    name = "raising"

    def guidelines(self, ctx):
        raise ValueError("truncated JSON: Expecting ',' delimiter")

    def propose(self, ctx):
        raise ValueError("prose, no JSON at all")


class Flaky(Proposer):
    """Unreachable while `down` is set, fine otherwise (a server that comes back)."""

    name = "flaky"
    down = True

    def guidelines(self, ctx):
        return Guidelines(text="g", usage=AgentUsage(calls=1))

    def propose(self, ctx):
        if Flaky.down:
            raise ResumableStop("agent endpoint http://127.0.0.1:9/v1 could not be reached")
        return Proposal(
            configs=[Config.of({"retrieval": ("r-7b", ctx.iteration), "qa": ("qa-3b", 1)})]
        )


@pytest.fixture(autouse=True)
def local_proposers(monkeypatch):
    for name, cls in [("mixed", "Mixed"), ("raising", "Raising"), ("flaky", "Flaky")]:
        monkeypatch.setitem(PROPOSERS, name, f"{__name__}:{cls}")


@pytest.fixture
def task_file(tmp_path: Path) -> str:
    return str(write_grid_task(tmp_path / "task"))


def archived(task, config: Config, trial_id: int) -> dict:
    return Trial(
        trial_id=trial_id,
        iteration=0,
        proposer="x",
        config=config,
        status="ok",
        score=0.1,
        nominal_cost=config_cost(task, config),
    ).dump()


def test_screening_records_rejections_and_drops_duplicates(task_file):
    task = load_task(task_file)
    state: State = {
        "task": task_file,
        "iteration": 3,
        "archive": [archived(task, Config.of({"retrieval": ("r-7b", 1), "qa": ("qa-3b", 1)}), 0)],
        "agent_usage": {"calls": 1, "prompt_tokens": 10, "completion_tokens": 5, "failures": 0},
    }
    update = propose_trials(state, Runtime(context=Context(proposer="mixed")))
    rejected = [Trial.model_validate(t) for t in update["archive"]]
    assert [t.trial_id for t in rejected] == [1, 2, 3, 4]
    assert all(t.status == "rejected" and t.iteration == 3 for t in rejected)
    reasons = [t.error or "" for t in rejected]
    assert "exceeds the budget" in reasons[0]
    assert "unknown model 'gpt-9'" in reasons[1]
    assert "samples 99 outside 1..16" in reasons[2]
    assert "stage 'qa' missing" in reasons[3]
    assert update["pending"] == [
        {"config": Config.of(GOOD).model_dump(mode="json"), "rationale": "because"}
    ]
    assert update["empty_proposals"] == 0
    usage = dict(update["agent_usage"])
    assert usage.pop("seconds") > 0  # an agent step records its time
    assert usage == {
        "calls": 3,
        "prompt_tokens": 110,
        "completion_tokens": 55,
        "reasoning_tokens": 0,
        "replayed": 0,
        "failures": 1,
    }
    assert update["agent_failures"] == [
        {
            "iteration": 3,
            "node": "propose_trials",
            "error": "attempt 1: the answer contains no JSON object",
        }
    ]


def test_a_raising_proposer_is_recorded_and_the_run_finishes(tmp_path, task_file):
    out = run_search(
        task_file,
        "t",
        tmp_path / "db",
        {"proposer": "raising", "max_iterations": 5, "report_dir": str(tmp_path / "r")},
    )
    v = out.values
    assert out.finished
    assert v["stop_reason"].startswith("the proposer offered nothing new")
    nodes = [(f["iteration"], f["node"]) for f in v["agent_failures"]]
    assert nodes == [
        (1, "generate_guidelines"),
        (1, "propose_trials"),
        (2, "generate_guidelines"),
        (2, "propose_trials"),
    ]
    assert "ValueError: prose, no JSON at all" in v["agent_failures"][1]["error"]
    assert v["archive"] == [] and v["test_result"] is None
    assert Path(v["report"]["markdown"]).read_text().count("No trial succeeded") == 1


def test_an_unreachable_agent_stops_the_run_resumably(tmp_path, task_file):
    db = tmp_path / "db"
    opts = {
        "proposer": "flaky",
        "max_iterations": 3,
        "patience": None,
        "report_dir": str(tmp_path / "r"),
    }
    Flaky.down = True
    try:
        with pytest.raises(
            ResumableStop, match=r"(?s)could not be reached.*run the same command again"
        ):
            run_search(task_file, "t", db, opts)
        snap = read_thread(db, "t")
        assert snap.next == ("propose_trials",)
        assert snap.values["iteration"] == 1 and not snap.values.get("archive")
        Flaky.down = False
        out = run_search(task_file, "t", db, opts)
    finally:
        Flaky.down = True
    assert out.resumed and out.finished
    assert [t.config["retrieval"].samples for t in out.trials] == [1, 2, 3]
    assert [t.trial_id for t in out.trials] == [0, 1, 2]
    assert out.values["agent_usage"]["calls"] == 3  # guidelines were not asked twice


@pytest.mark.parametrize("cap", [3, 11])
def test_a_trial_cap_is_a_cap(tmp_path, task_file, cap):
    """The last batch is cut to what the cap leaves (the init phase too): never 109 for 100."""
    settings = {
        "proposer": "insight",
        "batch_size": 4,
        "max_trials": cap,
        "max_iterations": 50,
        "patience": None,
        "report_dir": str(tmp_path / "r"),
    }
    outcome = run_search(task_file, "t", tmp_path / "db", settings)
    assert len(outcome.trials.executed()) == cap
    assert "maximum trials reached" in (outcome.values.get("stop_reason") or "")
