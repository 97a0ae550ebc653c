"""The budget unit: the paper's own test vectors, the zero floor, and the measured twin."""

from __future__ import annotations

import pytest

from agenttts.environment.budget import (
    TokenUsage,
    measured_stage_budget,
    paper_budget,
    stage_budget,
)
from agenttts.environment.space import Config, stage_costs
from agenttts.environment.task_loading import load_task


def test_paper_vectors_exact():
    # 2Wiki retrieval: 72B, Np 2048, Nd 128, S 1 -> 814; QA: 70B, Np 256, Nd 64, S 1 -> 114.67.
    assert paper_budget(1, 72e9, 2048, 128) == pytest.approx(814, abs=1e-9)
    assert paper_budget(1, 70e9, 256, 64) == pytest.approx(114 + 2 / 3, abs=1e-9)
    assert stage_budget(1, 72e9, 2048, 128) == pytest.approx(814, abs=1e-9)
    assert stage_budget(1, 70e9, 256, 64) == pytest.approx(114.666666666, abs=1e-6)


def test_unit_configuration_costs_one():
    # One 3B model reading 128 tokens and writing 64 is ... ((128 + 64) - 128) / 64 = 1 unit.
    assert paper_budget(1, 3e9, 128, 64) == pytest.approx(1.0)


def test_prompt_counted_once_samples_linear():
    one = stage_budget(1, 8e9, 256, 64)
    step = stage_budget(2, 8e9, 256, 64) - one
    assert step == pytest.approx(8e9 / 3e9)  # each sample adds (M/M_unit) * Nd / Nd_unit
    assert stage_budget(10, 8e9, 256, 64) == pytest.approx(one + 9 * step)


def test_floor_at_zero_for_tiny_models():
    raw = paper_budget(1, 135e6, 256, 64)
    assert raw < 0
    assert stage_budget(1, 135e6, 256, 64) == 0.0
    # A model large enough for the raw formula to be positive is not touched by the floor.
    assert stage_budget(1, 3e9, 256, 64) == paper_budget(1, 3e9, 256, 64) == 3.0


def test_fixed_cost_choice_ignores_samples():
    assert stage_budget(1, 0.0, 2048, 128, fixed_cost=0.5) == 0.5
    assert stage_budget(50, 0.0, 2048, 128, fixed_cost=0.5) == 0.5


def test_measured_budget_uses_mean_lengths():
    # 10 questions, prompts of 200 tokens on average, 4 samples each of 50 tokens on average.
    usage = TokenUsage(queries=10, prompt_tokens=2000, completion_tokens=2000, samples=40, calls=10)
    assert measured_stage_budget(usage, 8e9, 4) == pytest.approx(stage_budget(4, 8e9, 200, 50))
    # Measured equals nominal when the measured lengths are the nominal ones.
    nominal_like = TokenUsage(
        queries=3, prompt_tokens=3 * 256, completion_tokens=3 * 2 * 64, samples=6
    )
    assert measured_stage_budget(nominal_like, 70e9, 2) == pytest.approx(
        stage_budget(2, 70e9, 256, 64)
    )


def test_measured_budget_none_without_measurements():
    assert measured_stage_budget(TokenUsage(), 8e9, 4) is None
    assert measured_stage_budget(TokenUsage(), 0.0, 4, fixed_cost=2.0) == 2.0


def test_token_usage_adds():
    a = TokenUsage(1, 10, 20, 2, 1)
    b = TokenUsage(2, 5, 5, 3, 2)
    assert a + b == TokenUsage(3, 15, 25, 5, 3)


def test_bundled_paper_task_carries_the_vectors():
    task = load_task("paper-2wiki", check_environment=False)
    config = Config.of(
        {"retrieval": ("qwen2.5-72b-instruct", 1), "qa": ("llama-3.1-70b-instruct", 1)}
    )
    costs = stage_costs(task, config)
    assert costs["retrieval"] == pytest.approx(814, abs=1e-9)
    assert costs["qa"] == pytest.approx(114 + 2 / 3, abs=1e-9)
