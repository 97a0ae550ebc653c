"""Free evaluations: every configuration a trial's samples already answer, scored at no new cost.

S samples drawn once answer every S' < S: sample i is cache index i, so the vote over the first S'
samples of a trial at S is exactly what a trial at S' computes. When trials have run, the
configurations their samples answer enter the archive as *derived* trials (`Trial.derived_from`:
the trial they came from; the training split; search cost 0; see `agenttts.archive` for how they
count). Which configurations (`Executor.held_reductions`), each checked by running it:

- every executor: fewer samples on the last stage, whose output feeds no later stage (the samples
  replay votes over the first S' samples; the grid and simulated replays answer S' as they would
  any trial). Run against the archive's emulated cache (`environment/emulated_cache.py`), they
  cost nothing, or are not derived.
- the live executors: fewer samples on any stage, run cache-only (`Executor.held_only`, zero
  endpoint calls) on the prompts the source trials sent alone (`Executor.run_held`), not on
  whatever the shared cache holds. An earlier stage whose aggregate is unchanged feeds later
  stages the same prompts, all held; one whose aggregate changes asks for prompts the sources
  never sent and fails, and is not derived, even where another search on the machine drew them.
  The derived configurations' own reductions are tried in turn, so a free earlier-stage
  reduction also yields its last-stage reductions.

Only full-split trials are sources (a racing trial dropped after a share of the items drew samples
for those items only), and only configurations not evaluated before are tried. The result is a
function of the archive alone, so a node re-run after a kill derives the same (a resumed search
neither loses nor repeats free evaluations), and a search repeated on a warm cache scores the same
configurations for free, and so proposes the same ones. The setting `free_evaluations` (on by
default) turns this off, to reproduce the paper's search exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agenttts.archive import Archive, Trial
from agenttts.environment import registry
from agenttts.environment.emulated_cache import Key, held_samples
from agenttts.environment.executor import TrialResult
from agenttts.environment.space import Config
from agenttts.environment.task import Task


def with_derived(
    task: Task,
    archive: Sequence[Mapping[str, Any]],
    new: list[dict[str, Any]],
    *,
    enabled: bool = True,
) -> list[dict[str, Any]]:
    """`new` (the state's dicts of trials just run, numbered after `archive`, the state's list)
    followed by the derived trials they yield, numbered after them; `new` alone when free
    evaluations are off."""
    if not enabled:
        return new
    whole = Archive.from_state({"archive": [*archive, *new]})
    sources = [t for t in whole[len(archive) :] if _is_source(t)]
    derived = derive(task, whole, sources)
    first = whole.next_id
    return [
        *new,
        *(
            Trial.from_result(
                result,
                task,
                trial_id=first + i,
                iteration=source.iteration,
                proposer=source.proposer,
                phase=source.phase,
                derived_from=source.trial_id,
            ).dump()
            for i, (source, result) in enumerate(derived)
        ),
    ]


def derive(
    task: Task, archive: Archive, sources: Sequence[Trial]
) -> list[tuple[Trial, TrialResult]]:
    """Each configuration not yet in `archive` that the samples of `sources` (trials in it)
    answer in full, with the source it came from (the first, in trial order, that holds it) and
    its result, in the order tried. See the module for which are tried."""
    kind = registry.executor_class(task.environment.kind)
    known = archive.evaluated().keys()
    earlier = list(archive.executed())  # a replay's emulated cache: what the search drew
    out: list[tuple[Trial, TrialResult]] = []
    frontier = [(t, t.config) for t in sources]
    while frontier:
        tries: dict[str, tuple[Trial, Config]] = {}
        for source, config in frontier:
            for c in kind.held_reductions(task, config):
                key = c.key()
                if key not in known and key not in tries:
                    tries[key] = (source, c)
        known |= tries.keys()
        # on the items as the source listed them (a raced trial: in its race's order), so that a
        # derived incumbent has per-item scores to be raced against
        by_items: dict[tuple[int, ...] | None, list[tuple[Trial, Config]]] = {}
        for source, c in tries.values():
            order = None if source.item_ids is None else tuple(source.item_ids)
            by_items.setdefault(order, []).append((source, c))
        frontier = []
        for items, group in by_items.items():
            results = registry.run_batch(
                task,
                [c for _, c in group],
                "train",
                items=items,
                earlier=earlier,
                held_by=list(dict.fromkeys(source.config for source, _ in group)),
                **kind.held_only,
            )
            for (source, config), r in zip(group, results, strict=True):
                if r.ok and r.search_cost == 0.0 and r.calls == 0:
                    out.append((source, _compact(r)))
                    frontier.append((source, config))
    return out


def _is_source(t: Trial) -> bool:
    return t.status == "ok" and t.derived_from is None and t.fidelity >= 1.0


def _compact(r: TrialResult) -> TrialResult:
    """A derived result without what its source trial already records (timing, the executor's
    details): derived trials are many, and every read of the archive parses them."""
    return r.model_copy(update={"details": {}, "wall_time_s": 0.0})


def held_by(task: Task, archive: Archive) -> dict[Key, int]:
    """What the archive's trials drew, per emulated-cache key (`emulated_cache.held_samples`):
    its executed full-split trials that ran (a trial dropped from a race drew for some items
    only, so it is not counted as holding its samples). With `emulated_cache.new_cost`, what a
    configuration would newly cost: a live cache may hold more (two upstream configurations with
    the same aggregate), never less."""
    return held_samples(task, (t.config for t in archive.executed().full().scored()))
