"""Simulated multi-stage tasks: documented response surfaces with the paper's three insights.

A simulated task costs no inference, so a benchmark can run every search method many times and
compare each with the *exhaustive* optimum. Nothing here pretends to be a measurement: the surfaces
come from the model below and a seed, and every bundled task is named ``sim-*``.

The model (all quantities in [0, 1]; ``z`` is a model's log-parameter position within its stage,
0 for the smallest choice and 1 for the largest)::

    p(m)      = lerp(quality, z) + jitter        single-sample quality of model m at this stage
    c(m)      = p + lerp(gain, z) * (1 - p)      ceiling that repeated sampling approaches
    t(m)      = lerp(tau, z)                     samples to close ~63% of the gap to c

    stage i with upstream quality u (u = 1 for the first stage):
    f         = 1 - upstream * (1 - u)           a weak upstream caps what this stage can do
    t'        = t * (1 + 2 * upstream * (1 - u)) and makes more samples necessary
    q(m, S)   = f * (p + (c - p) * (1 - exp(-(S - 1) / t'))) - overuse * (S - 1) / (max_S - 1)

The end metric's expected value is the last stage's q. The three insights follow by construction:
(1) ``quality`` and ``gain`` differ per stage, so one stage wants its largest model and another a
small one with many samples; (2) q rises with S, flattens, then falls (``overuse``), so each stage
has a finite optimal S; (3) a better upstream raises the downstream ceiling (f) and lowers the
downstream optimal S (t').

Finite-split noise: a split of n items has fixed item thresholds d_1..d_n ~ U(0, 1) (drawn from the
seed and the split); a configuration with expected quality q solves item j when d_j < q + e, where
e ~ N(0, noise_sd) is this configuration's luck on this split. The score is the solved fraction k/n:
consistent on re-evaluation, quantised to 1/n, correlated across configurations (the same items are
hard for everyone), and different between train and test. The luck e comes from a counter-based hash
of (seed, split, configuration), so one configuration and a vectorised sweep over millions of them
score identically.

Per-item outcomes (what racing evaluates on a subset of the items): item j is the j-th threshold
drawn, and the configuration solves it (1) or not (0) by the same rule d_j < q + e. Over random
items each outcome is a Bernoulli draw with mean ~ q + e; over the whole split their mean *is* the
score k/n above, so a full-split result is what it always was, and a subset's mean is that score's
unbiased estimate. Outcomes are nested across configurations (a higher q + e solves every item a
lower one solves), as "the same items are hard for everyone" implies.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from agenttts.environment.emulated_cache import CacheEmulation
from agenttts.environment.executor import Executor, TrialResult
from agenttts.environment.space import Config, config_cost
from agenttts.environment.splits import Split
from agenttts.environment.sweep import FeasibleChunk, OptimumBySweep, SweepResult, sweep
from agenttts.environment.task import Problem, Task

#: Per-stage surface settings (``stages[].settings``) and their defaults.
STAGE_DEFAULTS: dict[str, Any] = {
    "quality": [0.4, 0.7],  # single-sample quality of the smallest / largest model
    "gain": [0.5, 0.3],  # share of the remaining gap sampling can close, smallest / largest
    "tau": [4.0, 2.0],  # samples to close ~63% of that gap, smallest / largest
    "overuse": 0.03,  # quality lost from S=1 to S=max_samples by over-sampling
    "upstream": 0.5,  # dependence on the previous stage's quality (ignored on the first stage)
}
#: Task-level settings (``environment.settings``) and their defaults; seed defaults to data.seed.
TASK_DEFAULTS: dict[str, Any] = {"noise_sd": 0.003, "jitter": 0.02, "seed": None}

_PAIRS = ("quality", "gain", "tau")
_SPLIT_CODES: dict[Split, int] = {"train": 0x7A11, "test": 0x7E57}
_U64 = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic is intended)."""
    with np.errstate(over="ignore"):
        x = x + _U64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _normal_from_hash(h: np.ndarray) -> np.ndarray:
    """Standard normal draws from hashes (Box-Muller on two derived uniforms)."""
    u1 = ((_mix(h) >> _U64(11)).astype(np.float64) + 0.5) / 2.0**53
    u2 = ((_mix(h ^ _U64(0xA5A5A5A5)) >> _U64(11)).astype(np.float64) + 0.5) / 2.0**53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@dataclass(frozen=True)
class StageSurface:
    """One stage's response surface: per-model arrays indexed like ``stage.models``."""

    name: str
    models: tuple[str, ...]
    p1: np.ndarray
    ceiling: np.ndarray
    tau: np.ndarray
    overuse: float
    upstream: float
    max_samples: int

    def quality(self, model_idx: np.ndarray, samples: np.ndarray, upstream_q: np.ndarray | None):
        """Expected quality of this stage's output (vectorised over configurations)."""
        u = np.ones(np.shape(model_idx)) if upstream_q is None else upstream_q
        weak = self.upstream * (1.0 - u)
        p, c = self.p1[model_idx], self.ceiling[model_idx]
        tau = self.tau[model_idx] * (1.0 + 2.0 * weak)
        extra = samples - 1.0
        rise = p + (c - p) * (1.0 - np.exp(-extra / tau))
        drop = self.overuse * extra / max(1, self.max_samples - 1)
        return np.clip((1.0 - weak) * rise - drop, 0.0, 1.0)


class SimulatedSurface:
    """The whole task's surfaces plus its split thresholds; scores configurations in bulk."""

    def __init__(self, task: Task, settings: dict[str, Any]):
        self.task = task
        opts = {**TASK_DEFAULTS, **{k: v for k, v in settings.items() if k in TASK_DEFAULTS}}
        self.seed = int(task.data.seed if opts["seed"] is None else opts["seed"])
        self.noise_sd = float(opts["noise_sd"])
        jitter = float(opts["jitter"])
        rng = np.random.default_rng([self.seed, 0x51A])
        self.stages: list[StageSurface] = []
        for stage in task.stages:
            s = {**STAGE_DEFAULTS, **stage.settings}
            logp = np.log([m.params or 1.0 for m in stage.models])
            span = logp.max() - logp.min()
            z = (logp - logp.min()) / span if span > 0 else np.ones_like(logp)

            def lerp(pair: Sequence[float], z: np.ndarray = z) -> np.ndarray:
                return pair[0] + (pair[1] - pair[0]) * z

            p1 = np.clip(lerp(s["quality"]) + rng.uniform(-jitter, jitter, len(z)), 0.0, 1.0)
            ceiling = p1 + lerp(s["gain"]) * (1.0 - p1)
            self.stages.append(
                StageSurface(
                    name=stage.name,
                    models=tuple(stage.model_names),
                    p1=p1,
                    ceiling=ceiling,
                    tau=lerp(s["tau"]),
                    overuse=float(s["overuse"]),
                    upstream=float(s["upstream"]),
                    max_samples=stage.max_samples,
                )
            )
        #: Item thresholds in item order (item j = the j-th draw), and sorted for fast counting.
        self._items = {
            split: np.random.default_rng([self.seed, code]).uniform(
                0.0, 1.0, self.split_size(split)
            )
            for split, code in _SPLIT_CODES.items()
        }
        self._thresholds = {split: np.sort(d) for split, d in self._items.items()}

    def split_size(self, split: Split) -> int:
        return self.task.data.train_size if split == "train" else max(1, self.task.data.test_size)

    # --- scoring --------------------------------------------------------------------------------
    def _start_hash(self, split: Split, n: int) -> np.ndarray:
        h = np.full(n, ((self.seed * 0x1000193) ^ _SPLIT_CODES[split]) % 2**64, dtype=np.uint64)
        return _mix(h)

    @staticmethod
    def _step_hash(h: np.ndarray, model_idx: np.ndarray, samples: np.ndarray) -> np.ndarray:
        code = model_idx.astype(np.uint64) * _U64(1_000_003) + samples.astype(np.uint64)
        return _mix(h ^ code)

    def _level(self, expected: np.ndarray, h: np.ndarray) -> np.ndarray:
        """q + e: a configuration solves exactly the items whose threshold lies below it."""
        return expected + self.noise_sd * _normal_from_hash(h)

    def _observe(self, expected: np.ndarray, h: np.ndarray, split: Split) -> np.ndarray:
        d = self._thresholds[split]
        return np.searchsorted(d, self._level(expected, h), side="left") / len(d)

    def expected(
        self, model_idx: Sequence[np.ndarray], samples: Sequence[np.ndarray]
    ) -> np.ndarray:
        """Noise-free end quality; arrays per stage, one entry per configuration."""
        q = None
        for st, m, s in zip(self.stages, model_idx, samples, strict=True):
            q = st.quality(m, s, q)
        assert q is not None
        return q

    def _hash(
        self, model_idx: Sequence[np.ndarray], samples: Sequence[np.ndarray], split: Split
    ) -> np.ndarray:
        h = self._start_hash(split, len(model_idx[0]))
        for m, s in zip(model_idx, samples, strict=True):
            h = self._step_hash(h, m, s)
        return h

    def score(
        self, model_idx: Sequence[np.ndarray], samples: Sequence[np.ndarray], split: Split
    ) -> np.ndarray:
        """Observed score on a split (k/n), vectorised over configurations."""
        h = self._hash(model_idx, samples, split)
        return self._observe(self.expected(model_idx, samples), h, split)

    def item_outcomes(
        self, configs: Sequence[Config], split: Split, items: Sequence[int]
    ) -> np.ndarray:
        """configs x items: 1.0 where the configuration solves the item (d_j < q + e), else 0."""
        model_idx, samples = self.encode(configs)
        level = self._level(
            self.expected(model_idx, samples), self._hash(model_idx, samples, split)
        )
        d = self._items[split][np.asarray(items, dtype=np.int64)]
        return (d[None, :] < level[:, None]).astype(np.float64)

    def encode(self, configs: Sequence[Config]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        models, samples = [], []
        for st in self.stages:
            index = {name: i for i, name in enumerate(st.models)}
            models.append(np.array([index[c[st.name].model] for c in configs], dtype=np.int64))
            samples.append(np.array([c[st.name].samples for c in configs], dtype=np.float64))
        return models, samples

    def score_configs(self, configs: Sequence[Config], split: Split) -> np.ndarray:
        if not configs:
            return np.zeros(0)
        return self.score(*self.encode(configs), split)

    def score_chunk(self, chunk: FeasibleChunk, split: Split) -> np.ndarray:
        """Observed scores of a chunk of the feasible set (the exhaustive sweep's scorer)."""
        k = range(len(self.stages))
        return self.score(
            [chunk.model(i) for i in k], [chunk.samples(i).astype(np.float64) for i in k], split
        )


class SimulatedExecutor(CacheEmulation, OptimumBySweep, Executor):
    """Scores configurations on a simulated surface, a batch at once; no model is called.

    Declares `HasOptimum`: the exhaustive optimum is a vectorised sweep of the surface;
    `HasItems`: any subset of a split's items, with each item's outcome; and `ReplaysCache`: a
    trial's search cost is what a live search would have paid with its sample cache
    (`environment/emulated_cache.py`, one scope per split, the split's items).
    """

    kind: ClassVar[str] = "simulated"

    def __init__(self, task: Task, **overrides: Any):
        super().__init__(task, **overrides)
        self.surface = SimulatedSurface(task, self.settings)

    @classmethod
    def check_task(cls, task: Task) -> list[Problem]:
        problems: list[Problem] = []
        for key in task.environment.settings:
            if key not in TASK_DEFAULTS:
                problems.append(
                    Problem(
                        field=f"environment.settings.{key}",
                        message=f"unknown simulated setting (known: {', '.join(TASK_DEFAULTS)})",
                    )
                )
        for key in ("noise_sd", "jitter"):
            value = task.environment.settings.get(key, 0.0)
            if not isinstance(value, int | float) or value < 0:
                problems.append(
                    Problem(field=f"environment.settings.{key}", message="must be a number >= 0")
                )
        extra = [m for m in task.metrics if m != task.main_metric]
        if extra:
            problems.append(
                Problem(field="metrics", message=f"only the main metric is simulated: {extra}")
            )
        for stage in task.stages:
            where = f"stages[{stage.name}].settings"
            for m in stage.models:
                if m.kind != "llm":
                    problems.append(
                        Problem(
                            field=f"stages[{stage.name}].models[{m.name}]",
                            message="simulated stages model LLM choices only",
                        )
                    )
            for key, value in stage.settings.items():
                if key not in STAGE_DEFAULTS:
                    problems.append(
                        Problem(
                            field=f"{where}.{key}",
                            message=f"unknown surface setting (known: {', '.join(STAGE_DEFAULTS)})",
                        )
                    )
                elif key in _PAIRS:
                    ok = (
                        isinstance(value, list)
                        and len(value) == 2
                        and all(isinstance(v, int | float) for v in value)
                    )
                    low = 1.0 if key == "tau" else 0.0
                    high = None if key == "tau" else 1.0
                    if not ok or any(v < low or (high is not None and v > high) for v in value):
                        bound = ">= 1" if key == "tau" else "in [0, 1]"
                        problems.append(
                            Problem(
                                field=f"{where}.{key}",
                                message=f"must be [smallest, largest], both {bound}",
                            )
                        )
                elif not isinstance(value, int | float) or not 0 <= value <= 1:
                    problems.append(Problem(field=f"{where}.{key}", message="must be in [0, 1]"))
        return problems

    def split_size(self, split: Split) -> int:
        """Items in a split (`HasItems`: racing evaluates a subset of them)."""
        return self.surface.split_size(split)

    def _cache_rows(
        self, split: Split, items: Sequence[int] | None
    ) -> tuple[Hashable, np.ndarray, int]:
        size = self.split_size(split)
        rows = np.arange(size) if items is None else np.asarray(items, dtype=np.int64)
        return split, rows, size

    async def _evaluate_batch(
        self, configs: Sequence[Config], split: Split, items: tuple[int, ...] | None
    ) -> list[TrialResult]:
        """Score the whole batch in one vectorised call (on `items`: their outcomes' mean); each
        configuration is charged against the emulated cache in batch order."""
        if items is None:
            scores = self.surface.score_configs(configs, split)
            per_item: list[list[float] | None] = [None] * len(configs)
        else:
            outcomes = self.surface.item_outcomes(configs, split, items)
            scores = outcomes.mean(axis=1)
            per_item = [row.tolist() for row in outcomes]
        return [
            TrialResult(
                config=c,
                split=split,
                metrics={self.task.main_metric: float(score)},
                nominal_cost=config_cost(self.task, c),
                stages=self.charged(self.nominal_report(c), c, split, items),
                source="simulated",
                item_scores=scores_of_items,
            )
            for c, score, scores_of_items in zip(configs, scores, per_item, strict=True)
        ]

    def sweep(self, split: Split) -> SweepResult:
        """Every feasible configuration scored, a vectorised chunk at a time (`OptimumBySweep`)."""
        return sweep(self.task, lambda chunk: self.surface.score_chunk(chunk, split))
