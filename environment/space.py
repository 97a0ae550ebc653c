"""The search space of a task: configurations, their cost, the feasible set, and seeded draws.

Every proposer, the init node and the executors share this one module: a configuration's cost and
problems, the per-stage options, enumeration and exact counting of the feasible set, fitting a
configuration to the budget, the largest sample count a budget allows, uniform sampling of feasible
configurations, and the seeds that make every proposal a pure function of (seed, iteration, ...).
Functions take the `Task` (the schema) rather than living on it, so the schema stays data.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
import zlib
from collections.abc import Collection, ItemsView, Iterator, Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, RootModel

from agenttts.environment.task import Stage, Task

#: Slack on every budget comparison, so a configuration costing exactly the budget fits.
BUDGET_TOLERANCE = 1e-9
#: Below this many unexplored feasible configurations, enumerate them instead of rejecting draws.
ENUMERATE_BELOW = 2_000
#: Draws per wanted configuration before falling back to enumeration.
MAX_DRAWS_PER_CONFIG = 2_000


class StageConfig(BaseModel):
    """What one stage runs: a model and a sample count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    samples: int = Field(ge=1)


class Config(RootModel[dict[str, StageConfig]]):
    """A configuration: stage name -> (model, samples). JSON: {"qa": {"model": m, "samples": 4}}."""

    def __getitem__(self, stage: str) -> StageConfig:
        return self.root[stage]

    def items(self) -> ItemsView[str, StageConfig]:
        return self.root.items()

    def key(self) -> str:
        """Canonical identity, for de-duplication and caching."""
        return json.dumps(
            {k: [v.model, v.samples] for k, v in sorted(self.root.items())}, separators=(",", ":")
        )

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.key() == other.key()

    def short(self) -> str:
        return " | ".join(f"{k}={v.model}x{v.samples}" for k, v in self.root.items())

    def with_stage(self, stage: str, model: str, samples: int) -> Config:
        """This configuration with one stage replaced."""
        return Config.of({**self.root, stage: (model, int(samples))})

    @classmethod
    def of(cls, mapping: Mapping[str, tuple[str, int] | StageConfig | Mapping[str, Any]]) -> Config:
        out: dict[str, StageConfig] = {}
        for stage, v in mapping.items():
            if isinstance(v, StageConfig):
                out[stage] = v
            elif isinstance(v, tuple | list):
                out[stage] = StageConfig(model=v[0], samples=int(v[1]))
            else:
                out[stage] = StageConfig.model_validate(v)
        return cls(out)


# ------------------------------------------------------------------------------------------------
# Cost and validity of one configuration
# ------------------------------------------------------------------------------------------------


def stage_costs(task: Task, config: Config) -> dict[str, float]:
    return {s.name: s.cost(config[s.name].model, config[s.name].samples) for s in task.stages}


def config_cost(task: Task, config: Config) -> float:
    return sum(stage_costs(task, config).values())


def within_budget(task: Task, config: Config) -> bool:
    return config_cost(task, config) <= task.budget + BUDGET_TOLERANCE


def config_problems(task: Task, config: Config) -> list[str]:
    """Why a configuration cannot run (empty when it can): unknown stage/model, S, budget."""
    problems: list[str] = []
    names = set(task.stage_names)
    for extra in sorted(set(config.root) - names):
        problems.append(f"unknown stage {extra!r}")
    for s in task.stages:
        if s.name not in config.root:
            problems.append(f"stage {s.name!r} missing")
            continue
        sc = config[s.name]
        if sc.model not in s.model_names:
            problems.append(
                f"stage {s.name!r}: unknown model {sc.model!r} "
                f"(choices: {', '.join(s.model_names)})"
            )
        elif s.model(sc.model).kind != "llm" and sc.samples != 1:
            problems.append(
                f"stage {s.name!r}: {sc.model!r} is not an LLM and runs once (samples must be 1)"
            )
        elif s.model(sc.model).kind == "llm" and not allows_samples(s, sc.samples):
            problems.append(f"stage {s.name!r}: samples {sc.samples} {_outside(s)}")
    if not problems:
        total = config_cost(task, config)
        if total > task.budget + BUDGET_TOLERANCE:
            problems.append(f"cost {total:.2f} exceeds the budget {task.budget:g}")
    return problems


def cheapest_config(task: Task) -> Config:
    return Config.of(
        {
            s.name: min(
                ((m, fewest_samples(s, m)) for m in s.model_names), key=lambda c: s.cost(*c)
            )
            for s in task.stages
        }
    )


def largest_single_sample_config(task: Task) -> Config:
    """Every stage on its largest model with the fewest samples it allows (one, unless the
    stage's sample set starts higher)."""
    return Config.of(
        {
            s.name: (s.largest_model().name, fewest_samples(s, s.largest_model().name))
            for s in task.stages
        }
    )


# ------------------------------------------------------------------------------------------------
# Sample counts: every count up to max_samples, or the stage's set
# ------------------------------------------------------------------------------------------------


def allows_samples(stage: Stage, samples: int) -> bool:
    """Whether an LLM choice of `stage` may run `samples` (one of `Stage.sample_counts`)."""
    return samples in stage.samples if stage.samples else 1 <= samples <= stage.max_samples


def fewer_samples(task: Task, config: Config, stage: str) -> list[Config]:
    """`config` at each smaller sample count `stage` allows (fewest first), all else equal."""
    st, chosen = task.stage(stage), config[stage]
    if st.model(chosen.model).kind != "llm":
        return []
    return [
        config.with_stage(stage, chosen.model, s) for s in st.sample_counts if s < chosen.samples
    ]


def _outside(stage: Stage) -> str:
    if stage.samples:
        return "is not one of the stage's sample counts " + ", ".join(map(str, stage.samples))
    return f"outside 1..{stage.max_samples}"


def fewest_samples(stage: Stage, model: str) -> int:
    """The smallest S `model` may run at this stage (1 for a non-LLM choice)."""
    return 1 if stage.model(model).kind != "llm" else stage.sample_counts[0]


def snap_samples(stage: Stage, samples: float, how: str = "nearest") -> int:
    """An allowed sample count for any wanted S: the nearest in log scale (ties: the smaller),
    the largest at most S (`down`, else the fewest), or the smallest at least S (`up`, else the
    most). Every proposer that computes an S (bisection, scaling) goes through this."""
    counts = stage.sample_counts
    i = bisect.bisect_left(counts, samples)
    if i < len(counts) and counts[i] == samples:
        return counts[i]
    below, above = counts[max(i - 1, 0)], counts[min(i, len(counts) - 1)]
    if how == "down" or i == len(counts):
        return below
    if how == "up" or i == 0:
        return above
    wanted = math.log(samples)
    return below if wanted - math.log(below) <= math.log(above) - wanted else above


def neighbour_samples(stage: Stage, samples: int, step: int) -> int | None:
    """The allowed count `step` places above (or below, negative) `samples`; None past the end."""
    counts = stage.sample_counts
    if step > 0:
        i = bisect.bisect_right(counts, samples) + step - 1
    else:
        i = bisect.bisect_left(counts, samples) + step
    return counts[i] if 0 <= i < len(counts) else None


# ------------------------------------------------------------------------------------------------
# The feasible set
# ------------------------------------------------------------------------------------------------


def stage_options(stage: Stage) -> list[tuple[str, int, float]]:
    """Every (model, samples, cost) a stage allows; a non-LLM choice has only S=1."""
    out: list[tuple[str, int, float]] = []
    for m in stage.models:
        counts = [1] if m.kind != "llm" else stage.sample_counts
        out.extend((m.name, s, stage.cost(m.name, s)) for s in counts)
    return out


def count_feasible(task: Task) -> int:
    """How many configurations fit the budget, counted exactly without enumerating them all."""
    costs = [np.array([c for _, _, c in stage_options(s)]) for s in task.stages]
    rest_min = [sum(float(c.min()) for c in costs[i + 1 :]) for i in range(len(costs))]
    partial = np.zeros(1)
    for i, c in enumerate(costs[:-1]):
        partial = (partial[:, None] + c[None, :]).ravel()
        partial = partial[partial + rest_min[i] <= task.budget + BUDGET_TOLERANCE]
    last = np.sort(costs[-1])
    found = np.searchsorted(last, task.budget - partial + BUDGET_TOLERANCE, side="right")
    return int(found.sum())


def iter_feasible(task: Task) -> Iterator[Config]:
    """Every feasible configuration (exhaustive search), pruned by the remaining budget; stages in
    order, models as listed, samples ascending."""
    options = [stage_options(s) for s in task.stages]
    mins = [min(c for *_, c in o) for o in options]

    def rec(i: int, spent: float, acc: dict[str, tuple[str, int]]) -> Iterator[Config]:
        if i == len(task.stages):
            yield Config.of(acc)
            return
        floor = sum(mins[i + 1 :])
        for model, s, c in options[i]:
            if spent + c + floor <= task.budget + BUDGET_TOLERANCE:
                yield from rec(i + 1, spent + c, {**acc, task.stages[i].name: (model, s)})

    yield from rec(0, 0.0, {})


# ------------------------------------------------------------------------------------------------
# Fitting configurations to the budget
# ------------------------------------------------------------------------------------------------


def max_samples_for(stage: Stage, model: str, budget: float) -> int:
    """Largest allowed S whose stage cost fits `budget`; 0 if none does."""
    if stage.model(model).kind != "llm":
        return 1 if stage.cost(model, 1) <= budget else 0
    best = 0
    for s in stage.sample_counts:
        if stage.cost(model, s) <= budget + BUDGET_TOLERANCE:
            best = s
        else:
            break
    return best


def max_samples_given(task: Task, config: Config, stage: Stage, model: str) -> int:
    """Largest S for `stage` on `model` that fits the budget with the other stages as in config."""
    others = sum(c for n, c in stage_costs(task, config).items() if n != stage.name)
    return max_samples_for(stage, model, task.budget - others)


def fit_budget(task: Task, config: Config, keep: str) -> Config | None:
    """Lower the other stages' S (costliest first) until the config fits; None if it can't."""
    current = config
    for _ in range(sum(len(s.sample_counts) for s in task.stages)):
        if within_budget(task, current):
            return current
        costs = stage_costs(task, current)
        movable = [
            s
            for s in task.stages
            if s.name != keep and current[s.name].samples > fewest_samples(s, current[s.name].model)
        ]
        if not movable:
            return None
        s = max(movable, key=lambda st: (costs[st.name], st.name))
        sc = current[s.name]
        over = config_cost(task, current) - task.budget
        per = s.cost(sc.model, sc.samples) - s.cost(sc.model, sc.samples - 1)
        drop = max(1, math.ceil(over / per)) if per > 0 else 1
        lower = snap_samples(s, max(1, sc.samples - drop), "down")
        if lower >= sc.samples:
            lower = neighbour_samples(s, sc.samples, -1) or fewest_samples(s, sc.model)
        current = current.with_stage(s.name, sc.model, lower)
    return current if within_budget(task, current) else None


# ------------------------------------------------------------------------------------------------
# Seeds and seeded sampling
# ------------------------------------------------------------------------------------------------


def _seed_text(parts: tuple[object, ...]) -> str:
    return ":".join(map(str, parts))


def derived_seed(*parts: object, crc32: bool = False) -> int:
    """A seed from any parts, stable across processes (unlike `hash`): 32 bits of their sha256, or
    with `crc32` the 31-bit CRC the LLM proposers send as a request's seed (servers that honour it
    answer a resumed call the same way), kept because changing it would change their requests."""
    text = _seed_text(parts).encode()
    if crc32:
        return zlib.crc32(text) & 0x7FFFFFFF
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big")


def seeded_rng(*parts: object, text_seed: bool = False) -> random.Random:
    """A generator seeded by `parts`: by `derived_seed(*parts)`, or with `text_seed` by the joined
    text itself (Python hashes it whole), the insight proposer's scheme, kept because changing it
    would change its proposals."""
    return random.Random(_seed_text(parts) if text_seed else derived_seed(*parts))


def sample_feasible(
    task: Task, rng: random.Random, k: int, exclude: Collection[str] = ()
) -> list[Config]:
    """Up to `k` distinct feasible configurations, uniformly, none whose key is in `exclude`.

    Uniform over *feasible* configurations, not over the box: every stage's option is drawn
    uniformly and over-budget draws are thrown away, which leaves the feasible set uniformly
    covered; a small remainder is enumerated instead.
    """
    taken = set(exclude)
    if count_feasible(task) - len(taken) <= ENUMERATE_BELOW:
        rest = [c for c in iter_feasible(task) if c.key() not in taken]
        return rng.sample(rest, min(k, len(rest)))
    options = [stage_options(s) for s in task.stages]
    out: list[Config] = []
    for _ in range(k * MAX_DRAWS_PER_CONFIG):
        if len(out) == k:
            return out
        picks = [rng.choice(o) for o in options]
        if sum(c for *_, c in picks) > task.budget + BUDGET_TOLERANCE:
            continue
        config = Config.of({s.name: p[:2] for s, p in zip(task.stages, picks, strict=True)})
        if config.key() not in taken:
            taken.add(config.key())
            out.append(config)
    rest = [c for c in iter_feasible(task) if c.key() not in taken]
    return out + rng.sample(rest, min(k - len(out), len(rest)))
