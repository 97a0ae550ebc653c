"""Racing on training items (`agenttts.racing`) and the search cost, unit by unit: the rule and
its stated error rates, partial trials in the archive, per-item outcomes of the simulated
surface, the samples replay's emulated cache, the agent's cost, and Optuna's view of a race."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from agenttts.archive import Archive, Trial
from agenttts.environment.executor import TrialResult
from agenttts.environment.registry import make_executor, run_batch
from agenttts.environment.space import Config, sample_feasible
from agenttts.environment.task_loading import load_task, resolve_task_path
from agenttts.llm import AgentEndpoint, AgentUsage
from agenttts.proposers.base import ProposalContext
from agenttts.proposers.optuna_bo import TPEProposer, _space

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from samples_task import write_samples_task

from agenttts.racing import (
    Race,
    can_still_win,
    estimate,
    paired_upper,
    stage_apart,
    stays,
    wilson,
)

N = 50
CFG = Config.of({"qa": ("m", 1)})


def partial(scores: dict[int, float], n: int = N, config: Config = CFG) -> TrialResult:
    return TrialResult(
        config=config,
        split="train",
        metrics={"acc": sum(scores.values()) / len(scores)},
        item_ids=list(scores),
        item_scores=list(scores.values()),
        split_size=n,
        fidelity=len(scores) / n,
    )


def full(scores: list[float]) -> TrialResult:
    r = partial(dict(enumerate(scores)))
    r.fidelity = 1.0
    return r


def test_rungs_double_from_the_first_share_to_the_whole_split():
    race = Race(order=tuple(range(50)), first=13)
    assert race.rungs() == [13, 26, 50]
    assert race.next_items(0) == tuple(range(13))
    assert race.next_items(13) == tuple(range(13, 26))
    assert race.next_items(26) == tuple(range(26, 50))


def test_the_bounds_close_on_the_exact_value_when_every_item_is_seen():
    assert paired_upper([0.0, -1.0, 0.0, 1.0], 4, 2.0) == pytest.approx(0.0)
    assert paired_upper([0.0, -1.0, 0.0, 0.0], 50, 2.0) > 0  # few items: still in the race
    assert wilson(0.5, 50, 50, 2.0, upper=True) == pytest.approx(0.5)
    assert wilson(0.5, 10, 50, 2.0, upper=True) > 0.7


def test_a_challenger_that_never_disagrees_stays_and_a_clearly_worse_one_is_dropped():
    inc = full([1.0] * 30 + [0.0] * 20)
    same = partial({j: (1.0 if j < 30 else 0.0) for j in range(13)})
    assert can_still_win(same, inc, "acc")
    worse = partial({j: 0.0 for j in range(26)})  # loses 26 of 26 items the incumbent solved
    assert not can_still_win(worse, inc, "acc")
    # A batch-mate on the same items is a reference too; full and failed results are done.
    mate = partial({j: 1.0 for j in range(26)})
    assert stays([worse, mate], None, "acc") == [False, True]
    assert stays([inc], None, "acc") == [False]


def test_the_initial_trials_race_per_stage_and_a_trial_in_two_comparisons_needs_to_lose_both():
    base = Config.of({"a": ("big", 1), "b": ("big", 1)})
    a_small, b_small = base.with_stage("a", "small", 4), base.with_stage("b", "small", 4)
    assert stage_apart(base, a_small) == "a" and stage_apart(base, b_small) == "b"
    assert stage_apart(a_small, b_small) is None  # two stages apart: never compared

    def at(config: Config, losses: int) -> TrialResult:  # 13 items, `losses` of them lost
        return partial({j: (0.0 if j < losses else 1.0) for j in range(13)}, config=config)

    def race(*results: TrialResult) -> list[bool]:
        def groups(i: int, k: int) -> str | None:
            return stage_apart(results[i].config, results[k].config)

        return stays(list(results), None, "acc", groups=groups)

    # base loses its stage-b comparison, ties its stage-a one: still the stage-a evidence.
    assert race(at(base, 6), at(a_small, 6), at(b_small, 0)) == [True, True, True]
    # Clearly worse in every comparison it takes part in: dropped; alone in its own: runs on.
    assert race(at(base, 6), at(a_small, 0), at(b_small, 0)) == [False, True, True]
    assert race(at(a_small, 6), at(b_small, 0)) == [True, True]


@pytest.mark.parametrize("rungs", [(13, 26), (7, 14, 28)])
def test_the_stated_false_drop_rates_hold_by_simulation(rungs):
    """The module docstring's Monte Carlo: 50 items, rungs at 13 and 26 (first share 0.25) or 7,
    14 and 28 (0.125), z = 2: a challenger with `wins` items better and `losses` items worse than
    its reference, in random order."""
    rng = np.random.default_rng(0)

    def drop_rate(wins: int, losses: int, reps: int = 4000) -> float:
        d = np.zeros(N)
        d[:wins], d[wins : wins + losses] = 1, -1
        drops = 0
        for _ in range(reps):
            perm = rng.permutation(d)
            drops += any(paired_upper(list(perm[:m]), N, 2.0) < -1e-12 for m in rungs)
        return drops / reps

    assert drop_rate(2, 1) == 0.0 and drop_rate(3, 1) == 0.0  # at most one loss: kept
    assert drop_rate(4, 2) < 0.03 and drop_rate(6, 4) < 0.03 and drop_rate(3, 2) < 0.045
    assert drop_rate(3, 3) < 0.08  # an exact tie

    def share_run(losses: int, reps: int = 2000) -> float:  # nested: a worse one only loses
        d = np.zeros(N)
        d[:losses] = -1
        seen = 0.0
        for _ in range(reps):
            perm = rng.permutation(d)
            out = next((m for m in rungs if paired_upper(list(perm[:m]), N, 2.0) < 0), N)
            seen += out / N
        return seen / reps

    assert share_run(7) == pytest.approx(0.47, abs=0.04)
    assert share_run(12) == pytest.approx(0.34, abs=0.04)


def test_a_dropped_trial_is_scored_by_its_paired_estimate():
    inc = full([1.0] * 40 + [0.0] * 10)
    inc.metrics = {"acc": 0.8}
    c = partial({j: (0.0 if j < 4 else 1.0) for j in range(20)})  # 4 losses on 20 seen items
    assert c.metrics["acc"] == pytest.approx(0.8)
    assert estimate(c, inc, "acc") == pytest.approx(0.8 - 4 / 20)
    assert estimate(c, None, "acc") is None


def _trial(i: int, score: float, fidelity: float = 1.0, cost: float = 10.0) -> dict:
    return Trial(
        config=Config.of({"qa": ("m", i + 1)}),
        trial_id=i,
        iteration=1,
        proposer="p",
        status="ok",
        metrics={"acc": score},
        score=score,
        fidelity=fidelity,
        split_size=N,
        item_ids=None if fidelity == 1.0 else list(range(int(fidelity * N))),
        search_cost=cost,
    ).dump()


def test_only_full_fidelity_trials_can_be_best_and_the_running_cost_adds_up():
    archive = Archive([_trial(0, 0.6), _trial(1, 0.9, fidelity=0.26, cost=2.6), _trial(2, 0.7)])
    best = archive.best()
    assert best is not None and best.trial_id == 2  # the partial 0.9 is no result
    assert archive.best_so_far() == [0.6, 0.6, 0.7]
    assert [t.trial_id for t in archive.ranked()] == [2, 0, 1]  # partial ones after full ones
    assert len(archive.full()) == 2 and archive.top_by_iteration() == {1: 0.7}
    assert archive.search_costs() == [10.0, 12.6, 22.6]
    assert archive.search_cost() == pytest.approx(22.6)


@pytest.mark.parametrize("name", ["sim-2wiki", "sim-taskbench"])
def test_simulated_per_item_outcomes_average_to_the_published_full_split_score(name):
    task = load_task(resolve_task_path(name))
    ex = make_executor(task)
    configs = sample_feasible(task, random.Random(1), 200, set())
    n = task.data.train_size
    for split in ("train", "test"):
        size = n if split == "train" else task.data.test_size
        outcomes = ex.surface.item_outcomes(configs, split, range(size))  # type: ignore[attr-defined]
        assert set(np.unique(outcomes)) <= {0.0, 1.0}
        published = ex.surface.score_configs(configs, split)  # type: ignore[attr-defined]
        assert np.array_equal(outcomes.mean(axis=1), published)


def samples_task(folder: Path) -> Path:
    rows = [
        {"model": m, "qid": q, "sample": s, "answer": "a", "gold": "a", "tokens": 5}
        for m in ("s", "l")
        for q in range(10)
        for s in range(8)
    ]
    return write_samples_task(folder, rows, ("s", "l"), name="cache", train_size=10, test_size=0)


def test_the_samples_replay_counts_only_samples_no_earlier_trial_drew(tmp_path):
    task = load_task(samples_task(tmp_path))
    four, eight = Config.of({"qa": ("l", 4)}), Config.of({"qa": ("l", 8)})
    [first] = run_batch(task, [four], "train", items=range(5))
    nominal = task.stages[0].cost("l", 8)
    fresh = nominal * 10  # every question, every sample drawn anew
    [alone] = run_batch(task, [eight], "train")
    assert alone.search_cost == pytest.approx(fresh)
    # After S=4 on 5 of the 10 questions, S=8 draws 4 new samples there and 8 elsewhere.
    [after] = run_batch(task, [eight], "train", earlier=[first])
    assert after.stages["qa"].cached_samples == 4 * 5
    assert after.search_cost == pytest.approx(fresh * (1 - 20 / 80))
    # Another model's samples are another model's.
    [other] = run_batch(task, [Config.of({"qa": ("s", 8)})], "train", earlier=[first, after])
    assert other.stages["qa"].cached_samples == 0


def test_agent_tokens_cost_units_through_the_budget_formula():
    usage = AgentUsage(calls=2, prompt_tokens=1500, completion_tokens=500, seconds=3.0)
    # ((M / 3e9) * (prompt + completion) - 128 * calls) / 64, with M = 30e9
    assert usage.search_cost(30e9) == pytest.approx((10 * 2000 - 256) / 64)
    assert usage.search_cost(None) == 0.0
    assert AgentUsage(calls=1, prompt_tokens=10).search_cost(1e6) == 0.0  # floored at 0
    ep = AgentEndpoint(
        model="m", base_url="embedded", api_key_env=None, temperature=0.9, max_tokens=8, timeout_s=1
    )
    assert ep.cost_params() == pytest.approx(135e6)
    assert ep.model_copy(update={"base_url": "http://x/v1"}).cost_params() is None


def test_tpe_is_told_a_trial_dropped_from_a_race_as_a_pruned_one():
    import optuna

    task = load_task(resolve_task_path("sim-2wiki"))
    config = sample_feasible(task, random.Random(0), 1, set())[0]
    dropped = Trial(
        config=config,
        trial_id=0,
        iteration=1,
        proposer="tpe",
        status="ok",
        score=0.5,
        metrics={"em": 0.54},
        fidelity=0.52,
        split_size=50,
        item_ids=list(range(26)),
    )
    ctx = ProposalContext(task=task, archive=Archive([dropped]), iteration=2, batch_size=1)
    frozen = TPEProposer._frozen(task, dropped, _space(task), 0.0)
    assert frozen.state == optuna.trial.TrialState.PRUNED
    assert frozen.intermediate_values == {26: 0.5}
    assert len(TPEProposer().propose(ctx).configs) == 1
