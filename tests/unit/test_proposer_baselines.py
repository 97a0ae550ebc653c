"""Random, grid, TPE and GP proposers on a tiny replay task: valid, in budget, no duplicates,
reproducible by seed, and a pure function of the archive (a resumed run proposes the same)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agenttts.archive import Archive, Trial
from agenttts.environment.space import config_cost, config_problems, count_feasible, iter_feasible
from agenttts.proposers import make_proposer
from agenttts.proposers.base import ProposalContext, ProposerSettings
from agenttts.proposers.optuna_bo import GPProposer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "proposers"))
from tiny_grid import drive, keys, load_tiny, table_scores

SEARCHERS = ["random", "grid", "tpe"]


def score(t: Trial) -> float:
    """An executed trial's score (every trial here succeeds)."""
    assert t.score is not None, t
    return t.score


@pytest.fixture
def task(tmp_path):
    return load_tiny(tmp_path)


@pytest.mark.parametrize("name", SEARCHERS)
def test_proposals_are_valid_within_budget_and_never_repeat(task, name):
    proposer = make_proposer(name, ProposerSettings(seed=3))
    archive, proposals, duplicates = drive(task, proposer, iterations=6, batch_size=5)
    assert duplicates == 0
    flat = [c for p in proposals for c in p.configs]
    assert len(flat) == len({c.key() for c in flat}) == 30
    for c in flat:
        assert config_problems(task, c) == []
        assert config_cost(task, c) <= task.budget + 1e-9
    assert all(t.status == "ok" for t in archive)


@pytest.mark.parametrize("name", SEARCHERS)
def test_same_seed_same_search_and_a_resumed_call_proposes_the_same(task, name):
    a = drive(task, make_proposer(name, ProposerSettings(seed=7)), iterations=4)
    b = drive(task, make_proposer(name, ProposerSettings(seed=7)), iterations=4)
    assert keys(a[1]) == keys(b[1])
    # Resume: a fresh proposer asked again at iteration 3 with the archive of iterations 1-2.
    archive = [t for t in a[0] if t.iteration <= 2]
    fresh = make_proposer(name, ProposerSettings(seed=7))
    again = fresh.propose(
        ProposalContext(task=task, archive=Archive(archive), iteration=3, batch_size=4)
    )
    assert [c.key() for c in again.configs] == keys(a[1])[2]


@pytest.mark.parametrize("name", ["random", "tpe"])
def test_another_seed_searches_differently(task, name):
    a = drive(task, make_proposer(name, ProposerSettings(seed=1)), iterations=3)
    b = drive(task, make_proposer(name, ProposerSettings(seed=2)), iterations=3)
    assert keys(a[1]) != keys(b[1])


def test_grid_enumerates_every_feasible_configuration_and_so_finds_the_optimum(task):
    total = count_feasible(task)
    archive, proposals, _ = drive(
        task, make_proposer("grid"), iterations=total // 8 + 2, batch_size=8
    )
    assert len(archive) == total
    assert {t.config.key() for t in archive} == {c.key() for c in iter_feasible(task)}
    assert proposals[-1].configs == []  # exhausted: nothing new to offer
    feasible = set(c.key() for c in iter_feasible(task))
    table = table_scores()
    assert max(score(t) for t in archive) == max(v for k, v in table.items() if k in feasible)


def test_random_covers_a_small_space_completely_without_repeats(task):
    total = count_feasible(task)
    archive, _, duplicates = drive(
        task,
        make_proposer("random", ProposerSettings(seed=0)),
        iterations=total // 10 + 3,
        batch_size=10,
    )
    assert duplicates == 0 and len(archive) == total


def test_tpe_learns_from_the_archive(task):
    """After its random start-up, TPE's asks score better on average than uniform draws."""

    def mean_late(name: str) -> float:
        scores = []
        for seed in range(4):
            archive, _, _ = drive(task, make_proposer(name, ProposerSettings(seed=seed)), 6, 5)
            scores += [score(t) for t in archive if t.iteration > 3]
        return sum(scores) / len(scores)

    assert mean_late("tpe") > mean_late("random")


def test_gp_runs_or_says_clearly_what_it_needs(task):
    problem = GPProposer.unavailable()
    proposer = make_proposer("gp", ProposerSettings(seed=0))
    if problem is None:  # 12 start-up draws, then one batch from the fitted GP, asked twice
        archive, proposals, duplicates = drive(task, proposer, iterations=4, batch_size=4)
        assert duplicates == 0
        assert all(not config_problems(task, c) for p in proposals for c in p.configs)
        fresh = make_proposer("gp", ProposerSettings(seed=0))
        early = [t for t in archive if t.iteration <= 3]
        again = fresh.propose(
            ProposalContext(task=task, archive=Archive(early), iteration=4, batch_size=4)
        )
        assert [c.key() for c in again.configs] == keys(proposals)[3]
        return
    assert "torch" in problem.lower()
    with pytest.raises(RuntimeError, match="PyTorch"):
        proposer.propose(ProposalContext(task=task, archive=Archive(), iteration=1, batch_size=2))
