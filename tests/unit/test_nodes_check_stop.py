"""The stop check: each criterion, its recorded reason, and patience counted per iteration."""

from __future__ import annotations

import pytest

from agenttts.archive import Archive, Status, Trial
from agenttts.environment.space import Config
from agenttts.graph.context import Context
from agenttts.nodes.check_stop import route, stale_iterations, stop_reason

CFG = Config.of({"a": ("m", 1)})


def trial(i: int, iteration: int, score: float | None, status: Status = "ok") -> Trial:
    return Trial(
        trial_id=i,
        iteration=iteration,
        proposer="p",
        config=Config.of({"a": ("m", i + 1)}),
        status=status,
        score=score,
        phase="init" if iteration == 0 else "search",
    )


def state(trials, iteration, **kw):
    return {"archive": [t.dump() for t in trials], "iteration": iteration, **kw}


def test_stale_iterations_counts_iterations_without_a_better_score():
    trials = Archive([trial(0, 0, 0.5), trial(1, 1, 0.6), trial(2, 2, 0.6), trial(3, 3, 0.55)])
    assert stale_iterations(trials, 1) == 0
    assert stale_iterations(trials, 3) == 2  # a tie is not an improvement
    assert stale_iterations(trials, 5) == 4  # iterations with no scored trial are stale too
    assert stale_iterations(Archive([trial(0, 1, None, "failed")]), 1) == 1
    assert stale_iterations(Archive([trial(0, 1, 0.1)]), 1) == 0


@pytest.mark.parametrize(
    ("ctx", "st", "expected"),
    [
        (Context(target=0.6), state([trial(0, 1, 0.6)], 1), "target reached: score 0.6 >= 0.6"),
        (Context(target=0.7), state([trial(0, 1, 0.6)], 1), None),
        (Context(max_trials=2), state([trial(0, 1, 0.1), trial(1, 1, None, "rejected")], 1), None),
        (
            Context(max_trials=2),
            state([trial(0, 1, 0.1), trial(1, 1, None, "failed")], 1),
            "maximum trials reached (2 >= 2)",
        ),
        (Context(max_iterations=3), state([], 3), "maximum iterations reached (3)"),
        (
            Context(patience=2),
            state([trial(0, 1, 0.5), trial(1, 2, 0.4), trial(2, 3, 0.5)], 3),
            "patience exhausted: 2 iterations without a better score",
        ),
        (Context(patience=None), state([trial(0, 1, 0.5)], 9), None),
        (
            Context(patience=None),
            state([trial(0, 1, 0.5)], 3, empty_proposals=2),
            "the proposer offered nothing new 2 iterations in a row (space exhausted?)",
        ),
        (Context(patience=None), state([trial(0, 1, 0.5)], 3, empty_proposals=1), None),
    ],
)
def test_stop_reason(ctx, st, expected):
    ctx.max_iterations = ctx.max_iterations if expected and "iterations reached" in expected else 10
    assert stop_reason(st, ctx) == expected


def test_route_follows_the_recorded_reason():
    assert route({"stop_reason": "maximum iterations reached (3)"}) == "final_evaluation"
    assert route({"stop_reason": None}) == "generate_guidelines"
