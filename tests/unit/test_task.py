"""The task model: one clear, field-named message per mistake; feasibility counting; splits."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from agenttts.environment.space import (
    Config,
    config_cost,
    config_problems,
    count_feasible,
    iter_feasible,
    stage_options,
)
from agenttts.environment.splits import split_items
from agenttts.environment.task import TaskError
from agenttts.environment.task_loading import load_task, parse_task

BASE: dict[str, Any] = {
    "name": "tiny",
    "budget": 40,
    "stages": [
        {
            "name": "retrieval",
            "models": [{"name": "big", "params": 7e9}, {"name": "small", "params": 3e9}],
            "prompt_tokens": 256,
            "gen_tokens": 64,
            "max_samples": 6,
            "aggregator": "vote_ids",
        },
        {
            "name": "qa",
            "models": [{"name": "small", "params": 3e9}, {"name": "mid", "params": 5e9}],
            "prompt_tokens": 256,
            "gen_tokens": 64,
            "max_samples": 5,
        },
    ],
    "metrics": ["em", "f1"],
    "main_metric": "em",
    "data": {"train_size": 3, "test_size": 4, "seed": 7},
    "environment": {"kind": "grid", "settings": {"table": "grid.csv"}},
}


def write(tmp_path: Path, raw: Any, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return path


def problems_of(tmp_path: Path, raw: Any, *, check_environment: bool = False) -> list[str]:
    with pytest.raises(TaskError) as info:
        load_task(write(tmp_path, raw), check_environment=check_environment)
    return [str(p) for p in info.value.problems]


def mutated(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    for path, value in changes.items():
        node: Any = raw
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return raw


def test_base_task_is_valid(tmp_path):
    task = load_task(write(tmp_path, BASE), check_environment=False)
    assert task.stage_names == ["retrieval", "qa"]
    assert task.stage("qa").cost("small", 1) == 3.0


def test_unknown_model(tmp_path):
    raw = mutated(stages__1__models=[{"name": "mystery"}])
    (msg,) = problems_of(tmp_path, raw)
    assert msg.startswith("stages[qa].models[mystery]:")
    assert "unknown model 'mystery'" in msg


def test_unknown_model_lists_what_the_deployment_knows(tmp_path):
    write(
        tmp_path,
        {"models": {"known": {"base_url": "http://127.0.0.1:9/v1", "params": 3e9}}},
        "dep.yaml",
    )
    raw = mutated(stages__1__models=[{"name": "known"}, {"name": "mystery"}], deployment="dep.yaml")
    (msg,) = problems_of(tmp_path, raw)
    assert "unknown model 'mystery'" in msg and "deployment knows: known" in msg


def test_negative_budget(tmp_path):
    (msg,) = problems_of(tmp_path, mutated(budget=-5))
    assert msg.startswith("budget:") and "greater than 0" in msg


def test_budget_below_cheapest_configuration(tmp_path):
    (msg,) = problems_of(tmp_path, mutated(budget=5))
    # The cheapest is small x1 on both stages: 3 + 3 = 6 units.
    assert msg.startswith("budget:")
    assert "below the cheapest configuration (6.00" in msg


def test_missing_data_file(tmp_path):
    (msg,) = problems_of(tmp_path, mutated(data={"path": "nowhere.json"}))
    assert msg.startswith("data.path:") and "missing data file" in msg


def test_unknown_aggregator(tmp_path):
    (msg,) = problems_of(tmp_path, mutated(stages__0__aggregator="median"))
    assert msg.startswith("stages[retrieval].aggregator:")
    assert "unknown aggregator 'median'" in msg


def test_duplicate_stage_name(tmp_path):
    raw = mutated()
    raw["stages"][1]["name"] = "retrieval"
    msgs = problems_of(tmp_path, raw)
    assert any("duplicate stage name 'retrieval'" in m for m in msgs)


def test_malformed_yaml_is_one_line_with_its_place(tmp_path):
    with pytest.raises(TaskError) as info:
        load_task(write(tmp_path, "name: x\nstages: [unclosed\n"), check_environment=False)
    assert str(info.value) == (
        f"{tmp_path / 'task.yaml'}:3:1: not valid YAML: while parsing a flow sequence: "
        "expected ',' or ']', but got '<stream end>'"
    )


def test_not_a_mapping(tmp_path):
    (msg,) = problems_of(tmp_path, "- just\n- a list\n")
    assert "mapping" in msg


def test_unknown_environment_kind(tmp_path):
    (msg,) = problems_of(
        tmp_path, mutated(environment={"kind": "teleport"}), check_environment=True
    )
    assert msg.startswith("environment.kind:") and "unknown environment kind 'teleport'" in msg


def test_unknown_field_is_named(tmp_path):
    (msg,) = problems_of(tmp_path, mutated(stages__0__temprature=0.9))
    assert msg.startswith("stages[retrieval].temprature:")


def test_every_problem_reported_at_once(tmp_path):
    raw = mutated(stages__0__aggregator="median", data={"path": "nowhere.json"})
    raw["stages"][1]["models"] = [{"name": "mystery"}]
    msgs = problems_of(tmp_path, raw)
    assert len(msgs) == 3


def test_missing_task_file(tmp_path):
    with pytest.raises(TaskError, match="no such task file"):
        load_task(tmp_path / "absent.yaml")


# --- feasibility ----------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [6, 10, 17.5, 25, 40, 1000])
def test_count_feasible_matches_enumeration(budget):
    task = parse_task(mutated(budget=budget))
    configs = list(iter_feasible(task))
    assert count_feasible(task) == len(configs)
    assert len(set(configs)) == len(configs)
    assert all(config_cost(task, c) <= budget + 1e-9 for c in configs)
    assert all(not config_problems(task, c) for c in configs)


def test_count_feasible_three_stages_with_fixed_cost_choice():
    raw = mutated(budget=30)
    raw["stages"][0]["models"].append({"name": "bm25", "kind": "bm25", "fixed_cost": 0.5})
    raw["stages"].append(
        {
            "name": "check",
            "models": [{"name": "small", "params": 3e9}],
            "prompt_tokens": 128,
            "gen_tokens": 64,
            "max_samples": 4,
        }
    )
    task = parse_task(raw)
    assert count_feasible(task) == len(list(iter_feasible(task))) > 0
    every = {
        Config.of({"retrieval": (m, s), "qa": (q, t), "check": ("small", u)})
        for m, s, _ in stage_options(task.stages[0])
        for q, t, _ in stage_options(task.stages[1])
        for u in range(1, 5)
    }
    assert set(iter_feasible(task)) == {c for c in every if config_cost(task, c) <= 30 + 1e-9}


# --- splits ---------------------------------------------------------------------------------------


def test_split_is_deterministic_and_disjoint():
    task = parse_task(BASE)
    items = [f"q{i}" for i in range(10)]
    train, test = split_items(task.data, items, "train"), split_items(task.data, items, "test")
    assert len(train) == 3 and len(test) == 4
    assert not set(train) & set(test)
    assert train == split_items(parse_task(BASE).data, items, "train")
    assert test == split_items(parse_task(BASE).data, items, "test")
    other = parse_task(mutated(data={"train_size": 3, "test_size": 4, "seed": 8}))
    moved = (split_items(other.data, items, "train"), split_items(other.data, items, "test"))
    assert moved != (train, test)


def test_split_with_fewer_items_than_sizes():
    task = parse_task(mutated(data={"train_size": 5, "test_size": 50}))
    items = list(range(7))
    train, test = split_items(task.data, items, "train"), split_items(task.data, items, "test")
    assert len(train) == 5 and len(test) == 2
    assert sorted(train + test) == items


def test_non_llm_choice_runs_once():
    """A retriever without samples would be the same trial under another key: S must be 1."""
    task = parse_task(
        {
            "name": "t",
            "budget": 100,
            "metrics": ["f1"],
            "main_metric": "f1",
            "environment": {"kind": "grid"},
            "stages": [
                {
                    "name": "retrieval",
                    "prompt_tokens": 2048,
                    "gen_tokens": 128,
                    "models": [
                        {"name": "bm25", "kind": "bm25", "fixed_cost": 0.01},
                        {"name": "big", "params": 3e9},
                    ],
                }
            ],
        }
    )
    assert config_problems(task, Config.of({"retrieval": ("bm25", 1)})) == []
    [problem] = config_problems(task, Config.of({"retrieval": ("bm25", 8)}))
    assert "'bm25' is not an LLM and runs once" in problem
    assert config_problems(task, Config.of({"retrieval": ("big", 2)})) == []
