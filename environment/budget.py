"""The paper's compute-budget unit (AgentTTS, arXiv 2508.00890), and its measured twin.

    budget(S, M, Np, Nd) = ((M / M_unit) * (Np + S * Nd) - Np_unit) / Nd_unit

The prompt is counted once for all S samples (prefix caching); the unit is "one 3B model reading a
128-token prompt and writing 64 tokens". Test vectors from the paper's code:
72e9/2048/128/S=1 -> 814 and 70e9/256/64/S=1 -> 114.67.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Self, cast

M_UNIT = 3e9
NP_UNIT = 128
ND_UNIT = 64


def paper_budget(samples: float, params: float, prompt_tokens: float, gen_tokens: float) -> float:
    """The formula exactly as the paper states it; may be negative for tiny models."""
    return ((params / M_UNIT) * (prompt_tokens + samples * gen_tokens) - NP_UNIT) / ND_UNIT


def stage_budget(
    samples: int,
    params: float,
    prompt_tokens: float,
    gen_tokens: float,
    fixed_cost: float | None = None,
) -> float:
    """Budget of one stage, floored at zero.

    The raw formula goes below zero for models far smaller than 3B on short prompts (and for a
    non-LLM retriever with no parameters); a stage cannot *earn* budget, so we floor at 0. In the
    paper's regime (>=1B models, its nominal lengths) the floor never binds and values are exact.
    A choice with ``fixed_cost`` (a BM25 or embedding retriever) costs that many units per query,
    whatever the sample count.
    """
    if fixed_cost is not None:
        return float(fixed_cost)
    return max(0.0, paper_budget(samples, params, prompt_tokens, gen_tokens))


class Counts:
    """Counters that add field by field (`a + b`): every field of a subclass (a dataclass) is a
    count or a sum (calls, tokens, samples, seconds), so the addition is derived, never restated.
    The stage's tokens (`TokenUsage`) and the agent's (`agenttts.llm.AgentUsage`) are counted so."""

    def __add__(self, other: Self) -> Self:
        names = [f.name for f in fields(cast(Any, self))]
        return type(self)(**{n: getattr(self, n) + getattr(other, n) for n in names})


@dataclass
class TokenUsage(Counts):
    """Measured tokens of one stage (or its fuser): what the endpoints reported in `usage`, as a
    trial counts them while it runs and over a split."""

    queries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    samples: int = 0
    calls: int = 0
    cached_samples: int = 0  # samples a cache served (no call): counted in `samples` too


def measured_stage_budget(
    usage: TokenUsage, params: float, samples: int, fixed_cost: float | None = None
) -> float | None:
    """The same unit with the mean *measured* prompt and per-sample completion lengths.

    Returns None when nothing was measured (replay of a table that carries no tokens).
    """
    if fixed_cost is not None:
        return float(fixed_cost)
    if usage.queries == 0 or usage.samples == 0:
        return None
    mean_prompt = usage.prompt_tokens / usage.queries
    mean_gen = usage.completion_tokens / usage.samples
    return stage_budget(samples, params, mean_prompt, mean_gen)
