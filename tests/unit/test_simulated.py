"""The simulated executor: bundled tasks load, scores are consistent, surfaces show the insights."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from agenttts.environment.registry import make_executor
from agenttts.environment.simulated import SimulatedExecutor
from agenttts.environment.space import (
    Config,
    config_cost,
    count_feasible,
    iter_feasible,
    max_samples_for,
)
from agenttts.environment.task import TaskError
from agenttts.environment.task_loading import load_task, parse_task

SIM_DIR = Path(__file__).resolve().parents[2] / "tasks" / "simulated"
SIM_TASKS = sorted(SIM_DIR.glob("*.yaml"))


def tiny_raw(**env: object) -> dict:
    return {
        "name": "sim-tiny",
        "description": "simulated two-stage test task",
        "budget": 60,
        "metrics": ["acc"],
        "main_metric": "acc",
        "data": {"train_size": 20, "test_size": 40, "seed": 3},
        "environment": {"kind": "simulated", "settings": dict(env)},
        "stages": [
            {
                "name": "a",
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": 12,
                "models": [{"name": "s", "params": 3e9}, {"name": "l", "params": 24e9}],
                "settings": {"quality": [0.4, 0.8]},
            },
            {
                "name": "b",
                "prompt_tokens": 256,
                "gen_tokens": 64,
                "max_samples": 12,
                "models": [{"name": "s", "params": 3e9}, {"name": "l", "params": 24e9}],
                "settings": {"upstream": 0.6},
            },
        ],
    }


def test_six_bundled_tasks_load_and_say_simulated():
    names = set()
    for path in SIM_TASKS:
        task = load_task(path)
        names.add(task.name)
        assert task.name.startswith("sim-")
        assert "simulated" in task.description.lower()
        assert task.environment.kind == "simulated"
    assert names == {
        "sim-2wiki",
        "sim-hotpotqa",
        "sim-cwq",
        "sim-webqsp",
        "sim-taskbench",
        "sim-chatdev",
    }


def test_scores_are_consistent_single_batch_and_fresh_executor():
    task = load_task(SIM_DIR / "sim-2wiki.yaml")
    configs = [
        Config.of({"retrieval": ("qwen2.5-72b", 1), "qa": ("llama-3.2-3b", s)}) for s in (1, 20, 60)
    ]
    ex = make_executor(task)
    assert isinstance(ex, SimulatedExecutor)
    batch = asyncio.run(ex.run(configs, "train"))
    single = [asyncio.run(ex.run([c], "train"))[0] for c in configs]
    again = asyncio.run(SimulatedExecutor(task).run(configs, "train"))
    scores = [r.metrics["em"] for r in batch]
    assert scores == [r.metrics["em"] for r in single] == [r.metrics["em"] for r in again]
    n = task.data.train_size
    assert all(abs(s * n - round(s * n)) < 1e-9 for s in scores)  # k/n of a finite split
    assert batch[0].nominal_cost == pytest.approx(config_cost(task, configs[0]))
    assert set(batch[0].stages) == {"retrieval", "qa"}


def test_train_and_test_splits_differ_and_invalid_config_fails_cleanly():
    task = load_task(SIM_DIR / "sim-cwq.yaml")
    ex = SimulatedExecutor(task)
    configs = list(iter_feasible(task))[:: len(list(iter_feasible(task))) // 50][:50]
    train = ex.surface.score_configs(configs, "train")
    test = ex.surface.score_configs(configs, "test")
    assert not np.allclose(train, test)
    over = Config.of({"retrieval": ("qwen2.5-72b", 100), "qa": ("llama-3.1-70b", 100)})
    (result,) = asyncio.run(ex.run([over], "train"))
    assert not result.ok and "exceeds the budget" in (result.error or "")


def test_vectorised_optimum_equals_scoring_every_feasible_config_one_by_one():
    task = parse_task(tiny_raw(noise_sd=0.01))
    ex = SimulatedExecutor(task)
    every = list(iter_feasible(task))
    results = asyncio.run(ex.run(every, "train"))
    best = max(r.metrics["acc"] for r in results)
    opt = ex.optimum("train")
    assert opt.feasible == len(every) == count_feasible(task)
    assert opt.score == pytest.approx(best)
    at_best = [r.config for r in results if r.metrics["acc"] == best]
    assert opt.config in at_best
    assert ex.count_at_least(best) == len(at_best)
    near = sum(r.metrics["acc"] >= best - 0.1 for r in results)
    assert ex.count_at_least(best - 0.1) == near > len(at_best)
    cheapest = min(config_cost(task, c) for c in at_best)
    assert config_cost(task, opt.config) == pytest.approx(cheapest)


def test_seed_changes_the_surface_and_same_seed_repeats_it():
    configs = list(iter_feasible(parse_task(tiny_raw())))
    a = SimulatedExecutor(parse_task(tiny_raw(seed=1))).surface.score_configs(configs, "train")
    b = SimulatedExecutor(parse_task(tiny_raw(seed=1))).surface.score_configs(configs, "train")
    c = SimulatedExecutor(parse_task(tiny_raw(seed=2))).surface.score_configs(configs, "train")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def _curve(ex: SimulatedExecutor, stage: int, model: int, upstream: float | None) -> np.ndarray:
    st = ex.surface.stages[stage]
    s = np.arange(1, st.max_samples + 1, dtype=float)
    up = None if upstream is None else np.full(len(s), upstream)
    return st.quality(np.full(len(s), model), s, up)


def test_insight1_stages_prefer_different_model_sizes_at_equal_cost():
    task = load_task(SIM_DIR / "sim-2wiki.yaml")
    ex = SimulatedExecutor(task, jitter=0.0)
    retrieval, qa = task.stage("retrieval"), task.stage("qa")
    # Retrieval: the largest model at one sample beats the smallest with everything that cost buys.
    big = retrieval.cost("qwen2.5-72b", 1)
    s_small = max_samples_for(retrieval, "qwen2.5-7b", big)
    assert _curve(ex, 0, 2, None)[0] > _curve(ex, 0, 0, None)[:s_small].max()
    # QA: the smallest model with the samples the largest model's single call costs wins.
    big = qa.cost("llama-3.1-70b", 1)
    s_small = max_samples_for(qa, "llama-3.2-3b", big)
    assert _curve(ex, 1, 0, 0.8)[:s_small].max() > _curve(ex, 1, 2, 0.8)[0]


@pytest.mark.parametrize("path", SIM_TASKS, ids=lambda p: p.stem)
def test_insight2_every_stage_has_an_interior_optimal_sample_count(path):
    task = load_task(path)
    ex = SimulatedExecutor(task)
    for i, stage in enumerate(ex.surface.stages):
        for m in range(len(stage.models)):
            curve = _curve(ex, i, m, None if i == 0 else 0.8)
            peak = int(curve.argmax())
            assert 0 < peak < len(curve) - 1, (stage.name, m)
            assert curve[peak] > curve[0] and curve[peak] > curve[-1]


def test_insight3_better_upstream_lowers_downstream_optimal_s_and_raises_its_ceiling():
    task = load_task(SIM_DIR / "sim-2wiki.yaml")
    ex = SimulatedExecutor(task)
    weak, strong = _curve(ex, 1, 0, 0.5), _curve(ex, 1, 0, 0.9)
    assert strong.argmax() < weak.argmax()
    assert strong.max() > weak.max()


def test_check_task_reports_every_bad_setting_before_anything_runs(tmp_path):
    raw = tiny_raw(noise=1, noise_sd=-1)
    raw["stages"][0]["settings"] = {"quality": [0.4, 1.5], "tau": [0.5, 2], "wobble": 1}
    raw["stages"][1]["settings"] = {"upstream": 2}
    raw["metrics"] = ["acc", "f1"]
    path = tmp_path / "bad.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(TaskError) as err:
        load_task(path)
    fields = {p.field for p in err.value.problems}
    assert {
        "environment.settings.noise",
        "environment.settings.noise_sd",
        "metrics",
        "stages[a].settings.quality",
        "stages[a].settings.tau",
        "stages[a].settings.wobble",
        "stages[b].settings.upstream",
    } <= fields
