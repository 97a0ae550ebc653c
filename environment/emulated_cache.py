"""The sample cache a replay executor emulates, so a replayed search pays what a live one would.

The live executor keeps every sample it draws (`environment/live/cache.py`: sample i of a prompt is
index i, so S samples are indexes 0..S-1) and pays only for the indexes it has not drawn before. A
stage's prompt depends on what the stages before it answered, so a replay, which has no prompts,
keys a stage's samples by what decides its prompt:

    (scope, stage, model, the upstream stages' (model, samples))   -> samples drawn, per item

and a trial pays, per stage and item, only for the indexes beyond those drawn under that key. A
trial that differs from an earlier one only in its last stage's sample count pays for the new
indexes alone; one whose upstream stage changed pays that stage's downstream again in full (the
prompts downstream would differ), as the live cache would charge when the upstream aggregate
changes. (The live cache may still hit where two upstream configurations happen to give the same
aggregate; the emulation does not guess at that and charges.)

`scope` separates item sets that are not the same items (a simulated task's train and test
splits); a replay whose rows are global (the samples store's questions) uses one scope.

One home, used by every replay executor (`CacheEmulation`): the grid, the simulated surfaces and
the samples replay. The executor is told the trials the search already ran (`ReplaysCache.remember`,
from the archive), so a resumed search rebuilds the cache from its archive: nothing paid twice,
nothing free that was not drawn.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np

from agenttts.environment.executor import StageReport, TrialResult
from agenttts.environment.space import Config, stage_costs
from agenttts.environment.splits import Split
from agenttts.environment.task import Task

Key = tuple[Hashable, str, str, tuple[tuple[str, str, int], ...]]


def stage_keys(stages: Sequence[str], config: Config, scope: Hashable = None) -> dict[str, Key]:
    """Per stage (pipeline order), the key its samples are held under (see the module)."""
    out: dict[str, Key] = {}
    upstream: tuple[tuple[str, str, int], ...] = ()
    for name in stages:
        sc = config[name]
        out[name] = (scope, name, sc.model, upstream)
        upstream = (*upstream, (name, sc.model, sc.samples))
    return out


def held_samples(task: Task, drawn: Iterable[Config]) -> dict[Key, int]:
    """Per key, the most samples the configurations in `drawn` drew (on every item)."""
    held: dict[Key, int] = {}
    for config in drawn:
        hold(task, held, config)
    return held


def hold(task: Task, held: dict[Key, int], config: Config) -> None:
    """Add `config`'s samples to `held` (`held_samples`): the batch planned so far holds them."""
    for name, key in stage_keys(task.stage_names, config).items():
        held[key] = max(held.get(key, 0), config[name].samples)


def new_cost(task: Task, held: Mapping[Key, int], config: Config) -> float:
    """The one answer to "what would `config` newly cost per item, given what is held"
    (`held_samples`): each stage's nominal cost times the share of its samples not drawn
    before, as `trial_search_cost` charges a trial that the emulated cache priced. The insight
    proposer ranks equally promising moves by it, and the agent's prompt quotes it."""
    costs = stage_costs(task, config)
    total = 0.0
    for name, key in stage_keys(task.stage_names, config).items():
        s = config[name].samples
        total += costs[name] * max(0, s - held.get(key, 0)) / s
    return total


def draws_new(task: Task, held: Mapping[Key, int], config: Config) -> bool:
    """Whether `config` would draw any sample not held: what decides that a configuration comes
    back as a free evaluation. Not `new_cost > 0`: a stage can cost nothing in the budget unit
    (a model far below 3B on short prompts, a floored `stage_budget`) and still have to run."""
    return any(
        config[name].samples > held.get(key, 0)
        for name, key in stage_keys(task.stage_names, config).items()
    )


class EmulatedCache:
    """Samples drawn so far, per key (see the module) and item."""

    def __init__(self, stages: Sequence[str]) -> None:
        self.stages = list(stages)  # pipeline order: a stage's upstream is the stages before it
        self._drawn: dict[Key, np.ndarray] = {}

    def draw(
        self, config: Config, rows: np.ndarray, size: int, scope: Hashable = None
    ) -> dict[str, int]:
        """Record that `config` drew its samples for the items `rows` (positions in 0..size-1,
        distinct); returns, per stage, how many of those item-samples were already held."""
        held: dict[str, int] = {}
        for name, key in stage_keys(self.stages, config, scope).items():
            samples = config[name].samples
            drawn = self._drawn.get(key)
            if drawn is None:
                drawn = self._drawn[key] = np.zeros(size, dtype=np.int64)
            held[name] = int(np.minimum(drawn[rows], samples).sum())
            drawn[rows] = np.maximum(drawn[rows], samples)
        return held


class CacheEmulation:
    """A replay executor's `ReplaysCache` side: `remember` replays the archive's trials into the
    emulated cache, `charged` charges a new trial against it. The executor says which items a
    trial covers (`_cache_rows`)."""

    task: Task
    _cache: EmulatedCache | None = None

    @abstractmethod
    def _cache_rows(
        self, split: Split, items: Sequence[int] | None
    ) -> tuple[Hashable, np.ndarray, int]:
        """(scope, rows, size): the cache's item positions a trial on `items` of `split` (None:
        every item) draws for, within `size` positions of that scope."""

    @property
    def emulated_cache(self) -> EmulatedCache:
        if self._cache is None:
            self._cache = EmulatedCache(self.task.stage_names)
        return self._cache

    def remember(self, earlier: Sequence[TrialResult]) -> None:
        """`ReplaysCache`: the samples these trials drew count as held from now on (a failed
        replay drew nothing: what fails it is known before any sample)."""
        for r in earlier:
            if r.ok:
                self._held(r.config, r.split, r.item_ids)

    def charged(
        self,
        reports: dict[str, StageReport],
        config: Config,
        split: Split,
        items: Sequence[int] | None,
    ) -> dict[str, StageReport]:
        """A new trial's stage reports with what the cache already held (`cached_samples`, which
        `trial_search_cost` discounts); its samples are held from now on."""
        held = self._held(config, split, items)
        return {
            name: r.model_copy(update={"cached_samples": held.get(name, 0)})
            for name, r in reports.items()
        }

    def _held(self, config: Config, split: Split, items: Sequence[int] | None) -> dict[str, int]:
        scope, rows, size = self._cache_rows(split, items)
        return self.emulated_cache.draw(config, rows, size, scope)
