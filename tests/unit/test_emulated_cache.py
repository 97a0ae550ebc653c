"""The replays' emulated sample cache: a trial pays only for the sample indexes not drawn before
under its key (stage, model, upstream configuration), in every replay executor."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task

from agenttts.environment.emulated_cache import (
    EmulatedCache,
    draws_new,
    held_samples,
    new_cost,
)
from agenttts.environment.registry import make_executor, run_batch
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task


def test_a_later_stage_pays_its_new_indexes_and_an_upstream_change_pays_again():
    cache = EmulatedCache(["a", "b"])
    rows = np.arange(10)

    def cfg(sa: int, sb: int, ma: str = "m") -> Config:
        return Config.of({"a": (ma, sa), "b": ("m", sb)})

    assert cache.draw(cfg(2, 4), rows, 10) == {"a": 0, "b": 0}
    # only b's sample count grew: a is held whole, b holds its first 4 of 6 per item
    assert cache.draw(cfg(2, 6), rows, 10) == {"a": 20, "b": 40}
    assert cache.draw(cfg(2, 3), rows, 10) == {"a": 20, "b": 30}  # fewer: all held
    # a's output changed (more samples, another model): b is drawn again from index 0
    assert cache.draw(cfg(3, 6), rows, 10) == {"a": 20, "b": 0}
    assert cache.draw(cfg(2, 6, ma="n"), rows, 10) == {"a": 0, "b": 0}
    # items are separate: a subset draws for its own rows only; a scope is its own cache
    assert cache.draw(cfg(2, 8), rows[:5], 10) == {"a": 10, "b": 30}
    assert cache.draw(cfg(2, 8), rows, 10, scope="test") == {"a": 0, "b": 0}


def _grid(tmp_path: Path) -> Task:
    return load_task(write_grid_task(tmp_path))


def _simulated(tmp_path: Path) -> Task:
    return load_task("sim-2wiki")


@pytest.mark.parametrize("make", [_grid, _simulated], ids=["grid", "simulated"])
def test_replays_charge_the_search_cost_of_new_samples_only(make, tmp_path):
    task = make(tmp_path)
    first, second = task.stage_names
    m1, m2 = task.stage(first).model_names[-1], task.stage(second).model_names[0]

    def cfg(s1: int, s2: int) -> Config:
        return Config.of({first: (m1, s1), second: (m2, s2)})

    def cost(name: str, s: int, model: str) -> float:
        return task.stage(name).cost(model, s)

    [base] = run_batch(task, [cfg(1, 4)], "train")
    n = base.items_evaluated
    assert base.search_cost == pytest.approx(base.nominal_search_cost)
    assert base.search_cost == pytest.approx(n * (cost(first, 1, m1) + cost(second, 4, m2)))

    later, upstream = run_batch(task, [cfg(1, 6), cfg(2, 6)], "train", earlier=[base])
    # the later stage's two new indexes per item, nothing for the unchanged first stage
    assert later.search_cost == pytest.approx(n * cost(second, 6, m2) * 2 / 6)
    # the first stage's one new index, and the second stage in full: its prompts changed
    assert upstream.search_cost == pytest.approx(n * (cost(first, 2, m1) / 2 + cost(second, 6, m2)))
    assert later.nominal_search_cost == pytest.approx(
        n * (cost(first, 1, m1) + cost(second, 6, m2))
    )
    [again] = run_batch(task, [cfg(1, 3)], "train", earlier=[base, later, upstream])
    assert again.ok and again.search_cost == 0.0 and again.nominal_search_cost > 0

    # a resumed search's executor, told the archive, charges what one executor running the
    # trials in turn charged: nothing paid twice, nothing free that was not drawn
    async def in_turn() -> list[float]:
        async with make_executor(task) as ex:
            out = []
            for c in (cfg(1, 4), cfg(1, 6), cfg(2, 6), cfg(1, 3)):
                [r] = await ex.run([c], "train")
                out.append(r.search_cost)
            return out

    assert asyncio.run(in_turn()) == pytest.approx(
        [base.search_cost, later.search_cost, upstream.search_cost, 0.0]
    )


@pytest.mark.parametrize("make", [_grid, _simulated], ids=["grid", "simulated"])
def test_new_cost_is_what_a_replay_charges_the_next_trial(make, tmp_path):
    """`new_cost` (what proposals are priced by) charges only the indexes not drawn before under
    the same key: per item, exactly what the replay then charges."""
    task = make(tmp_path)
    first, second = task.stage_names
    m1, m2 = task.stage(first).model_names[-1], task.stage(second).model_names[0]

    def cfg(s1: int, s2: int) -> Config:
        return Config.of({first: (m1, s1), second: (m2, s2)})

    ran = run_batch(task, [cfg(1, 4)], "train")
    held = held_samples(task, [cfg(1, 4)])
    last_only = task.stage(second).cost(m2, 8) * 4 / 8
    assert new_cost(task, held, cfg(1, 8)) == pytest.approx(last_only)
    assert new_cost(task, held, cfg(1, 3)) == 0.0
    assert new_cost(task, held, cfg(2, 4)) == pytest.approx(
        task.stage(first).cost(m1, 2) / 2 + task.stage(second).cost(m2, 4)
    )
    for c in (cfg(1, 8), cfg(2, 4), cfg(2, 8)):
        [r] = run_batch(task, [c], "train", earlier=ran)
        assert r.search_cost == pytest.approx(new_cost(task, held, c) * r.items_evaluated)


def test_a_configuration_that_costs_nothing_still_has_samples_to_draw(tmp_path):
    """Tiny models on short prompts cost 0 budget units (the floored unit), yet their samples must
    be drawn: `draws_new`, not a positive `new_cost`, decides what is free (the last CI run's
    search on such a task proposed nothing at all)."""
    from agenttts.archive import Archive
    from agenttts.proposers.insight.preferences import progressive_configs

    task = _grid(tmp_path)
    tiny = task.model_copy(
        update={
            "stages": [
                s.model_copy(
                    update={
                        "models": [m.model_copy(update={"params": 1e8}) for m in s.models],
                        "prompt_tokens": 8,
                        "gen_tokens": 4,
                    }
                )
                for s in task.stages
            ]
        }
    )
    first, second = tiny.stage_names
    m1, m2 = tiny.stage(first).model_names[0], tiny.stage(second).model_names[0]
    config = Config.of({first: (m1, 1), second: (m2, 4)})
    assert new_cost(tiny, {}, config) == 0.0 and draws_new(tiny, {}, config)
    held = held_samples(tiny, [config])
    assert not draws_new(tiny, held, Config.of({first: (m1, 1), second: (m2, 3)}))
    assert draws_new(tiny, held, Config.of({first: (m1, 1), second: (m2, 5)}))
    assert len(progressive_configs(tiny, Archive([]))) >= 2
