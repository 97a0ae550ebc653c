"""Initialisation by model preference: the paper's initial trials, and what the node records."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.runtime import Runtime

from agenttts.archive import Archive
from agenttts.environment.space import config_cost, largest_single_sample_config, max_samples_for
from agenttts.environment.task_loading import load_task
from agenttts.graph.context import Context
from agenttts.llm import AgentUsage
from agenttts.nodes.init_preferences import init_preferences
from agenttts.nodes.init_trials import init_trials
from agenttts.proposers import PROPOSERS
from agenttts.proposers.base import Preferences, Proposal, Proposer
from agenttts.proposers.insight.preferences import preference_configs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task


class Prefers(Proposer):
    name = "prefers"

    def initial_configs(self, task):
        return None if 1 in self.settings.no_insights else preference_configs(task)

    def summarize_preferences(self, ctx):
        assert len(ctx.archive.executed()) == 4  # it sees the initial trials just run
        return Preferences(
            models={"retrieval": "r-72b", "qa": "qa-3b"},
            notes="why",
            usage=AgentUsage(calls=1, prompt_tokens=7),
        )

    def propose(self, ctx):
        return Proposal()


class Broken(Prefers):
    def summarize_preferences(self, ctx):
        raise ValueError("unparseable")


def test_initial_configs_follow_the_paper(tmp_path):
    task = load_task(write_grid_task(tmp_path, budget=1200))
    planned = preference_configs(task)
    shares = task.budget_shares()
    assert shares == pytest.approx({"retrieval": 0.8, "qa": 0.2})
    by_stage: dict[str, list] = {"retrieval": [], "qa": []}
    for config, why in planned:
        assert config_cost(task, config) <= task.budget
        varied = [s for s in task.stage_names if "initialisation" in why and f"stage {s} " in why]
        [stage] = varied
        other = next(s for s in task.stages if s.name != stage)
        assert config[other.name].model == other.largest_model().name
        assert config[other.name].samples == 1
        by_stage[stage].append(config[stage])
    assert [c.model for c in by_stage["retrieval"]] == ["r-7b", "r-72b"]
    assert [c.model for c in by_stage["qa"]] == ["qa-3b", "qa-70b"]
    r = task.stage("retrieval")
    other_cost = task.stage("qa").cost("qa-70b", 1)
    for c in by_stage["retrieval"]:
        allowance = min(0.8 * task.budget, task.budget - other_cost)
        assert c.samples == max(1, max_samples_for(r, c.model, allowance))
    # qa-3b at the largest S its 20% share allows, capped at the stage maximum (16)
    assert by_stage["qa"][0].samples == max_samples_for(task.stage("qa"), "qa-3b", 240)


def test_a_model_too_large_for_its_share_still_gets_one_sample(tmp_path):
    task = load_task(write_grid_task(tmp_path, budget=1000))  # r-72b x1 = 814 > 800 (its share)
    configs = [c for c, _ in preference_configs(task)]
    assert largest_single_sample_config(task) in configs


def test_nodes_run_the_initial_trials_then_record_preferences(tmp_path, monkeypatch):
    monkeypatch.setitem(PROPOSERS, "prefers", f"{__name__}:Prefers")
    monkeypatch.setitem(PROPOSERS, "broken", f"{__name__}:Broken")
    task_file = str(write_grid_task(tmp_path, budget=1200))
    ran = init_trials({"task": task_file}, Runtime(context=Context(proposer="prefers")))
    trials = Archive.from_state(ran)
    assert [t.trial_id for t in trials.executed()] == [0, 1, 2, 3]
    assert all(t.phase == "init" and t.iteration == 0 and t.status == "ok" for t in trials)
    assert {t.derived_from for t in trials.derived()} <= {0, 1, 2, 3}  # free evaluations
    assert ran["settings"]["proposer"] == "prefers"
    assert "preferences" not in ran  # the trials alone: checkpointed before the agent is asked

    state: Any = {"task": task_file, **ran}
    update = init_preferences(state, Runtime(context=Context(proposer="prefers")))
    assert update["preferences"] == {"retrieval": "r-72b", "qa": "qa-3b"}
    assert update["preference_notes"] == "why"
    assert update["agent_usage"]["calls"] == 1 and update["agent_usage"]["prompt_tokens"] == 7
    assert "archive" not in update

    unset: Any = {**state, "settings": None}  # (the broken proposer is another setting)
    broken = init_preferences(unset, Runtime(context=Context(proposer="broken")))
    assert "preferences" not in broken
    assert broken["agent_failures"] == [
        {"iteration": 0, "node": "init_preferences", "error": "ValueError: unparseable"}
    ]
    skipped = init_trials(
        {"task": task_file}, Runtime(context=Context(proposer="prefers", no_insights=[1]))
    )
    assert "archive" not in skipped
    nothing: Any = {"task": task_file, **skipped}
    assert init_preferences(nothing, Runtime(context=Context())) == {}
