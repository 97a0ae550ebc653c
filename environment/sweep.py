"""The exhaustive optimum of a task: every feasible configuration scored, in bounded memory.

The bench measures each method against the best score any feasible configuration gets on the
training split. As `Config` objects run one by one, that stops being possible around 10^5
configurations, and a three-stage task with up to 128 samples per stage holds millions. Here the
feasible set is enumerated as arrays of option indices (`feasible_chunks`): stage by stage,
pruned by what the remaining stages cost at least, a block of partial configurations at a time, so
no more than about `CHUNK` configurations per stage are held at once, whatever the size of the
space. Each chunk is scored vectorised by the executor that knows its task (a simulated surface, a
grid's nearest rows, a sample store's vote tables) and folded into a `SweepResult`: the best
(ties: the cheaper, then the first in enumeration order, which is `space.iter_feasible`'s) and a
histogram of scores, which answers "how many configurations reach x" without a second sweep.

Executors declare `HasOptimum` by deriving `OptimumBySweep` and implementing `sweep(split)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agenttts.environment.executor import BestFeasible
from agenttts.environment.space import BUDGET_TOLERANCE, Config, stage_options
from agenttts.environment.splits import Split
from agenttts.environment.task import Task
from agenttts.errors import InputError

#: Configurations (and partial configurations per stage) held at once.
CHUNK = 1 << 20
#: Pruning by the cheapest completion may not drop a configuration that fits: float sums in
#: another order differ in the last bits, so prune with this much slack (the final test is exact).
_PRUNE_SLACK = 1e-6


@dataclass(frozen=True)
class StageOptions:
    """One stage's options as arrays, in `space.stage_options` order."""

    model: np.ndarray  # index into the stage's model_names
    samples: np.ndarray  # int64
    cost: np.ndarray  # float64, the stage's nominal cost


def stage_option_arrays(task: Task) -> list[StageOptions]:
    out = []
    for stage in task.stages:
        opts = stage_options(stage)
        index = {name: i for i, name in enumerate(stage.model_names)}
        out.append(
            StageOptions(
                model=np.array([index[m] for m, _, _ in opts], dtype=np.int64),
                samples=np.array([s for _, s, _ in opts], dtype=np.int64),
                cost=np.array([c for *_, c in opts], dtype=np.float64),
            )
        )
    return out


@dataclass
class FeasibleChunk:
    """Feasible configurations as arrays: the option each stage picks, and the total cost (summed
    stage by stage, as `space.config_cost` sums it)."""

    options: Sequence[StageOptions]
    picks: list[np.ndarray]
    cost: np.ndarray

    def __len__(self) -> int:
        return len(self.cost)

    def model(self, k: int) -> np.ndarray:
        return self.options[k].model[self.picks[k]]

    def samples(self, k: int) -> np.ndarray:
        return self.options[k].samples[self.picks[k]]

    def config(self, task: Task, i: int) -> Config:
        return Config.of(
            {
                st.name: (st.model_names[int(self.model(k)[i])], int(self.samples(k)[i]))
                for k, st in enumerate(task.stages)
            }
        )


def feasible_chunks(
    task: Task,
    *,
    models: Sequence[int] | None = None,
    chunk: int = CHUNK,
    options: list[StageOptions] | None = None,
) -> Iterator[FeasibleChunk]:
    """Every feasible configuration of `task` (or only those running model index `models[k]` at
    stage k), in `iter_feasible`'s order, in chunks of at most `chunk` (or one stage's options,
    if more). `options`: the task's `stage_option_arrays`, when the caller has them already.
    """
    options = options or stage_option_arrays(task)
    allowed = [
        np.flatnonzero(o.model == models[k]) if models is not None else np.arange(len(o.cost))
        for k, o in enumerate(options)
    ]
    costs = [o.cost[a] for o, a in zip(options, allowed, strict=True)]
    if any(len(c) == 0 for c in costs):
        return
    limit = task.budget + BUDGET_TOLERANCE
    slack = _PRUNE_SLACK * max(1.0, abs(task.budget))
    floors = [sum(float(c.min()) for c in costs[k + 1 :]) for k in range(len(costs))]
    last = len(costs) - 1

    def expand(k: int, cost: np.ndarray, picks: list[np.ndarray]) -> Iterator[FeasibleChunk]:
        c = costs[k]
        step = max(1, chunk // len(c))
        for lo in range(0, len(cost), step):
            total = cost[lo : lo + step, None] + c[None, :]
            keep = total <= limit if k == last else total + floors[k] <= limit + slack
            rows, cols = np.nonzero(keep)
            if not len(rows):
                continue
            chosen = [p[lo : lo + step][rows] for p in picks] + [allowed[k][cols]]
            if k == last:
                yield FeasibleChunk(options, chosen, total[rows, cols])
            else:
                yield from expand(k + 1, total[rows, cols], chosen)

    yield from expand(0, np.zeros(1), [])


@dataclass
class SweepResult:
    """A sweep folded up: the best scored configuration and how the scores are spread."""

    feasible: int = 0
    scored: int = 0
    score: float | None = None
    cost: float | None = None
    config: Config | None = None
    histogram: dict[float, int] = field(default_factory=dict)
    _key: tuple[Any, ...] | None = None  # (cost, picks) of the best, for ties

    def add(self, task: Task, chunk: FeasibleChunk, scores: np.ndarray) -> None:
        """Fold in one chunk's scores (NaN: that configuration gets no score, a failed trial)."""
        self.feasible += len(chunk)
        ok = ~np.isnan(scores)
        if not ok.any():
            return
        values, counts = np.unique(scores[ok], return_counts=True)
        for v, n in zip(values.tolist(), counts.tolist(), strict=True):
            self.histogram[v] = self.histogram.get(v, 0) + n
        self.scored += int(counts.sum())
        top = float(values[-1])
        if self.score is not None and top < self.score:
            return
        idx = np.flatnonzero(scores == top)
        # the cheapest, then the first in enumeration order (lexicographic in the picks)
        order = np.lexsort((*(p[idx] for p in reversed(chunk.picks)), chunk.cost[idx]))
        i = int(idx[order[0]])
        key = (float(chunk.cost[i]), tuple(int(p[i]) for p in chunk.picks))
        if self.score is None or self._key is None or top > self.score or key < self._key:
            self.score, self.cost, self._key = top, key[0], key
            self.config = chunk.config(task, i)

    def count_at_least(self, threshold: float) -> int:
        return sum(n for v, n in self.histogram.items() if v >= threshold - 1e-12)


def sweep(
    task: Task,
    score: Callable[[FeasibleChunk], np.ndarray],
    chunks: Iterable[FeasibleChunk] | None = None,
) -> SweepResult:
    """Score every feasible configuration (or the given chunks of them) and fold the scores."""
    result = SweepResult()
    for chunk in feasible_chunks(task) if chunks is None else chunks:
        result.add(task, chunk, score(chunk))
    return result


class OptimumBySweep:
    """`HasOptimum` for an executor that can score its feasible set vectorised: implement
    `sweep(split)`; the optimum and the counts come from one sweep per split, kept."""

    task: Task

    def sweep(self, split: Split) -> SweepResult:
        raise NotImplementedError

    def _swept(self, split: Split) -> SweepResult:
        cache: dict[str, SweepResult] = self.__dict__.setdefault("_sweeps", {})
        if split not in cache:
            cache[split] = self.sweep(split)
        return cache[split]

    def optimum(self, split: Split = "train") -> BestFeasible:
        """The best score over every feasible configuration (ties: the cheaper one)."""
        result = self._swept(split)
        if result.config is None or result.score is None:
            raise InputError(
                f"task {self.task.name!r}: none of its {result.feasible} feasible configurations "
                f"gets a score on the {split} split"
            )
        return BestFeasible(score=result.score, config=result.config, feasible=result.feasible)

    def count_at_least(self, threshold: float, split: Split = "train") -> int:
        """How many feasible configurations score at least `threshold` (the optimum's basin)."""
        return self._swept(split).count_at_least(threshold)
