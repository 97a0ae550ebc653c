"""Free (derived) evaluations: what a trial's samples already answer is scored at no new cost, is
exactly what running it would give, and lives in the archive as a result, not as a run."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

from agenttts.archive import Archive, Trial
from agenttts.derived import with_derived
from agenttts.environment.registry import run_batch
from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.environment.task_loading import load_task
from agenttts.proposers import make_proposer
from agenttts.proposers.base import ProposalContext, ProposerSettings
from agenttts.proposers.screening import screen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "graph"))
from grid_task import write_grid_task
from samples_task import write_samples_task


def samples_task(folder: Path) -> Task:
    """20 questions, two models, 8 samples each: answers drawn with a per-question difficulty
    among the gold and three wrong ones (so votes change with S), completion lengths varying."""
    rng = random.Random(1)
    rows = []
    for q in range(20):
        hard = rng.uniform(-0.3, 0.3)
        for model, base in (("small", 0.45), ("big", 0.6)):
            for s in range(8):
                right = rng.random() < base + hard
                rows.append(
                    {"model": model, "qid": q, "sample": s, "tokens": rng.randint(5, 40),
                     "answer": "gold" if right else rng.choice(["w1", "w2", "w3"]),
                     "gold": "gold", "prompt_tokens": 100 + q}
                )  # fmt: skip
    return load_task(
        write_samples_task(folder, rows, ("small", "big"), name="free", train_size=16, test_size=4)
    )


def trials(task: Task, configs: list[Config], first: int = 0, **run: Any) -> list[dict[str, Any]]:
    results = run_batch(task, configs, "train", **run)
    return [
        Trial.from_result(r, task, trial_id=first + i, iteration=1, proposer="p").dump()
        for i, r in enumerate(results)
    ]


def test_a_samples_trial_at_s_scores_every_smaller_s_as_its_own_trial_would(tmp_path):
    task = samples_task(tmp_path)
    ran = trials(task, [Config.of({"qa": ("big", 8)})])
    archive = Archive.from_state({"archive": with_derived(task, [], ran)})
    derived = archive.derived()
    assert [t.config["qa"].samples for t in derived] == [1, 2, 3, 4, 5, 6, 7]
    assert [t.trial_id for t in derived] == list(range(1, 8))
    for t in derived:
        assert (t.derived_from, t.split, t.search_cost, t.iteration) == (0, "train", 0.0, 1)
        assert t.items_evaluated == 16  # its score's standard error reads the split's size
        [alone] = run_batch(task, [t.config], "train")  # S' run as its own trial, fresh
        assert t.metrics == alone.metrics and t.score == alone.metrics["accuracy"]
        assert t.nominal_cost == alone.nominal_cost
    # they are results, not runs: scored and known, never executed nor paid for
    assert len(archive.executed()) == 1 and len(archive.scored()) == 8
    assert archive.search_cost() == archive.executed()[0].search_cost
    best = archive.best()
    assert best is not None and best.score == max(t.score or 0.0 for t in archive)
    assert archive.best_so_far() == [best.score]  # from the trial that held it on
    proposed = [t.config for t in derived] + [Config.of({"qa": ("small", 2)})]
    assert screen(task, proposed, archive).accepted == [Config.of({"qa": ("small", 2)})]


def test_only_new_full_trials_derive_and_only_what_is_not_known(tmp_path):
    task = samples_task(tmp_path)
    first = trials(task, [Config.of({"qa": ("big", 4)})])
    archive = with_derived(task, [], first)
    assert len(archive) == 4
    # a later trial at 6 derives 5 alone (1..4 are known); off, nothing is derived
    more = trials(task, [Config.of({"qa": ("big", 6)})], first=4)
    assert [
        Trial.model_validate(t).config["qa"].samples for t in with_derived(task, archive, more)
    ] == [6, 5]
    assert with_derived(task, archive, more, enabled=False) == more
    # a trial raced out after some items held samples for those items only: no source
    partial = trials(task, [Config.of({"qa": ("small", 8)})], first=4, items=[0, 1, 2])
    assert with_derived(task, archive, partial) == partial
    # one that raced to the end derives on its items, in its order: per-item scores to race with
    order = list(range(16))[::-1]
    raced = trials(task, [Config.of({"qa": ("small", 3)})], first=4, items=order)
    _, *derived = map(Trial.model_validate, with_derived(task, archive, raced))
    assert [t.config["qa"].samples for t in derived] == [1, 2]
    assert all(t.item_ids == order and t.item_scores and t.fidelity == 1.0 for t in derived)


def test_grid_and_simulated_derive_the_last_stage_as_their_table_or_surface_answers(tmp_path):
    for task in (load_task(write_grid_task(tmp_path)), load_task("sim-2wiki")):
        first, last = task.stage_names
        top = Config.of({first: (task.stage(first).model_names[-1], 2),
                         last: (task.stage(last).model_names[0], 5)})  # fmt: skip
        archive = Archive.from_state({"archive": with_derived(task, [], trials(task, [top]))})
        derived = archive.derived()
        assert [t.config for t in derived] == [
            top.with_stage(last, top[last].model, s) for s in (1, 2, 3, 4)
        ]
        alone = run_batch(task, [t.config for t in derived], "train")
        assert [t.metrics for t in derived] == [r.metrics for r in alone]
        assert all(t.search_cost == 0.0 for t in derived)


def test_a_failed_trial_derives_nothing(tmp_path):
    task = samples_task(tmp_path)
    failed = trials(task, [Config.of({"qa": ("big", 8)})])
    failed[0] = {**failed[0], "status": "failed", "error": "boom", "score": None, "metrics": {}}
    assert with_derived(task, [], failed) == failed


@pytest.mark.parametrize("method", ["random", "tpe", "grid"])
def test_baselines_learn_from_free_evaluations_and_never_ask_for_one(tmp_path, method):
    """16 configurations; one trial at (big, 8) answers the 7 smaller big ones: what is left to
    propose is the small model's 8, whatever the method (TPE is told the free ones as completed
    trials)."""
    task = samples_task(tmp_path)
    archive = Archive.from_state(
        {"archive": with_derived(task, [], trials(task, [Config.of({"qa": ("big", 8)})]))}
    )
    proposer = make_proposer(method, ProposerSettings(seed=0))
    proposal = proposer.propose(ProposalContext(task, archive, iteration=1, batch_size=8))
    assert sorted(c["qa"].samples for c in proposal.configs) == list(range(1, 9))
    assert {c["qa"].model for c in proposal.configs} == {"small"}
