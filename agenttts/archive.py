"""The archive: every trial of a search, as it lives in the checkpointed graph state.

Trials are stored in state as plain JSON dicts (``Trial.model_dump(mode="json")``) so Studio shows
them and checkpoints need no custom serde; `Archive.from_state` reads them back. The queries that
every node and proposer asks of the archive (executed, scored, best, ...) live on `Archive` only.

Every node reads the archive, so reading it must not cost in proportion to its length: the state
list only grows by appending, and `from_state` validates only the trials added since the last parse
it remembers (`_Parses`); the queries are single passes, memoised on the immutable `Archive`. The
state's list stays the one record: everything here is derived from it and rebuilt when it changes.

**Derived trials** (free evaluations, `agenttts.derived`): a configuration whose answers a trial's
samples already held, scored at no new cost, recorded with the trial it came from
(`derived_from`). It is a result, not a run: it is scored (`scored`, `ranked`, `best`: the final
test evaluation runs it for real), it fills the lines and curves the proposers read, it counts for
the best score of its source's iteration (so for the stop rules' staleness: the iteration found
it), and it is known (`evaluated`: the screen drops it, no proposer runs it again). It is not
executed (`executed`): the trial cap, the bench's executed trials to the optimum, the search cost
and the trial-by-trial curves (`best_so_far`, `search_costs`) count runs only, a derived result
improving the best from the point its source ran.
"""

from __future__ import annotations

import bisect
import math
import operator
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from agenttts.environment.executor import TrialResult
from agenttts.environment.space import BUDGET_TOLERANCE, Config, StageConfig
from agenttts.environment.splits import Split
from agenttts.environment.task import Task

T = TypeVar("T")
Status = Literal["ok", "failed", "rejected"]
Phase = Literal["init", "search", "test"]


class Trial(TrialResult):
    """An executor's result plus the search's bookkeeping: who proposed it, when, and its fate."""

    trial_id: int
    iteration: int
    phase: Phase = "search"
    proposer: str
    status: Status
    split: Split = "train"  # a rejected proposal never ran on any split
    #: The main metric; for a partial trial (racing) its paired estimate of the full-split
    #: score (`agenttts.racing.estimate`), its metrics holding the mean over the items it saw.
    score: float | None = None
    rationale: str | None = None
    #: A derived (free) evaluation: the id of the trial whose samples answered it (cost 0).
    derived_from: int | None = None

    @classmethod
    def from_result(
        cls,
        result: TrialResult,
        task: Task,
        *,
        trial_id: int,
        iteration: int,
        proposer: str,
        phase: Phase = "search",
        rationale: str | None = None,
        derived_from: int | None = None,
    ) -> Trial:
        return cls(
            **dict(result),
            trial_id=trial_id,
            iteration=iteration,
            phase=phase,
            proposer=proposer,
            status="ok" if result.ok else "failed",
            score=result.metrics.get(task.main_metric) if result.ok else None,
            rationale=rationale,
            derived_from=derived_from,
        )

    @classmethod
    def rejected(
        cls, config: Config, reason: str, *, trial_id: int, iteration: int, proposer: str
    ) -> Trial:
        """A proposal that was screened out; kept so the agent sees why next time."""
        return cls(
            trial_id=trial_id,
            iteration=iteration,
            proposer=proposer,
            config=config,
            status="rejected",
            error=reason,
        )

    def dump(self) -> dict[str, Any]:
        """The state's dict. A derived trial keeps only what it is read for (`DERIVED_FIELDS`;
        the rest is its model's default): they are many (every S' < S), and a checkpoint or a
        history read parses each."""
        if self.derived_from is None:
            return self.model_dump(mode="json")
        return self.model_dump(mode="json", include=set(DERIVED_FIELDS), exclude_none=True)


#: What a derived trial's state dict holds: its identity and result (with the split's size, its
#: score's standard error needs it), and its per-item scores where its source raced (racing
#: compares with them). It ran nothing: no tokens, calls, stage reports or timings of its own
#: (its source trial has them).
DERIVED_FIELDS = frozenset(
    {
        "trial_id",
        "iteration",
        "phase",
        "proposer",
        "status",
        "split",
        "config",
        "metrics",
        "score",
        "nominal_cost",
        "derived_from",
        "split_size",
        "item_ids",
        "item_scores",
    }
)


def trials_from(
    task: Task,
    results: Sequence[TrialResult],
    *,
    first_id: int,
    iteration: int,
    proposer: str,
    phase: Phase = "search",
    rationales: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    """The state's dicts for a batch of results, numbered from `first_id` (the archive's next)."""
    return [
        Trial.from_result(
            r,
            task,
            trial_id=first_id + i,
            iteration=iteration,
            proposer=proposer,
            phase=phase,
            rationale=rationales[i] if rationales else None,
        ).dump()
        for i, r in enumerate(results)
    ]


class Archive(Sequence[Trial]):
    """Every trial of a search in trial-id order, with the queries the nodes and proposers share.

    Immutable: a node reads it from the state, and its update appends new trial dicts. The test
    split's trial lives in the state's ``test_result``, never here, so no query has to skip it.
    A query that selects trials returns an `Archive`, so queries chain
    (``archive.scored().in_phase("search")``).
    """

    __slots__ = ("_keys", "_memo", "_trials")

    def __init__(self, trials: Iterable[Trial | Mapping[str, Any]] = ()) -> None:
        self._trials, self._keys = _checked(trials)
        self._memo: dict[str, tuple[_Query[Any], Any]] = {}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Archive:
        """The archive of a graph state (or of a node's update), whose trials are JSON dicts.

        Only the trials added since a list this process parsed before are validated (see
        `_Parses`), so a node's read costs what the last step appended, not the whole archive.
        """
        return _PARSES.parse(state.get("archive") or [])

    @classmethod
    def _of(cls, trials: tuple[Trial, ...], keys: tuple[str, ...]) -> Archive:
        """Trials already checked (a selection or an extension), with their configuration keys."""
        out = cls.__new__(cls)
        out._trials, out._keys, out._memo = trials, keys, {}
        return out

    def _extended(self, items: Iterable[Trial | Mapping[str, Any]]) -> Archive:
        """This archive with `items` appended: only the new items are validated, and every
        query answered on this archive is carried over, updated with the new trials only."""
        return self._concat(Archive._of(*_checked(items)))

    def _concat(self, tail: Archive) -> Archive:
        out = Archive._of(self._trials + tail._trials, self._keys + tail._keys)
        for name, (query, value) in list(self._memo.items()):  # another thread may add one
            if query.extend is not None:
                out._memo[name] = (query, query.extend(value, tail))
        return out

    def _answer(self, name: str, query: _Query[T]) -> T:
        """`query` on this archive, memoised under `name` (an Archive never changes)."""
        hit = self._memo.get(name)
        if hit is None:
            hit = self._memo[name] = (query, query.compute(self))
        value: T = hit[1]
        return value

    def _filter(self, keep: Callable[[Trial], bool]) -> Archive:
        picked = [i for i, t in enumerate(self._trials) if keep(t)]
        return Archive._of(
            tuple(self._trials[i] for i in picked), tuple(self._keys[i] for i in picked)
        )

    def _select(self, name: str, keep: Callable[[Trial], bool], *, carried: bool = True) -> Archive:
        """The trials that `keep`, memoised; `carried` selections are kept up to date as the
        archive grows (an extension filters only its new trials)."""
        extend = (lambda sel, tail: sel._concat(tail._filter(keep))) if carried else None
        return self._answer(name, _Query(lambda a: a._filter(keep), extend))

    @overload
    def __getitem__(self, index: int) -> Trial: ...
    @overload
    def __getitem__(self, index: slice) -> Archive: ...
    def __getitem__(self, index: int | slice) -> Trial | Archive:
        if isinstance(index, slice):
            return Archive._of(self._trials[index], self._keys[index])
        return self._trials[index]

    def __len__(self) -> int:
        return len(self._trials)

    def __iter__(self) -> Iterator[Trial]:
        return iter(self._trials)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Archive) and self._trials == other._trials

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Archive({len(self)} trials)"

    @property
    def next_id(self) -> int:
        """The id the next trial gets: ids are positions in the archive."""
        return len(self._trials)

    def executed(self) -> Archive:
        """Trials that ran on the training split (ok or failed); rejected proposals never ran,
        derived ones were answered by another trial's samples."""
        return self._select("executed", _is_executed)

    def derived(self) -> Archive:
        """Free evaluations: configurations scored from an executed trial's samples."""
        return self._select("derived", _is_derived)

    def evaluated(self) -> Archive:
        """Every trial with a result on the training split, executed or derived: what no
        proposer should be asked to run again."""
        return self._select("evaluated", _is_evaluated)

    def scored(self) -> Archive:
        """Trials with a score, executed or derived (partial ones too: see `full`)."""
        return self._select("scored", _is_scored)

    def full(self) -> Archive:
        """Trials evaluated on the whole training split: a racing search also records partial
        ones (fidelity < 1: a share of the items), whose score is that share's mean."""
        return self._select("full", _is_full)

    def failed(self) -> Archive:
        return self._select("failed", _is_failed)

    def rejected(self) -> Archive:
        """Proposals the screen rejected, kept with the reason so the agent sees it next time."""
        return self._select("rejected", _is_rejected)

    def in_phase(self, phase: Phase) -> Archive:
        return self._select(f"phase {phase}", lambda t: t.phase == phase)

    def in_iteration(self, iteration: int) -> Archive:
        # Not carried as the archive grows: one per iteration would pile up.
        return self._select(
            f"iteration {iteration}", lambda t: t.iteration == iteration, carried=False
        )

    def within(self, budget: float) -> Archive:
        """The trials whose configuration fits `budget` (rejected proposals too, which cost
        nothing): a frontier search's view of one of its budgets (`agenttts.frontier`), where a
        trial counts for every budget it fits."""
        return self._select(
            f"within {budget!r}", lambda t: t.nominal_cost <= budget + BUDGET_TOLERANCE
        )

    def front(self) -> list[Trial]:
        """The Pareto front of cost (`nominal_cost`, the paper's units) against the main metric
        among the full-fidelity scored trials, cheapest first: each point scores strictly more
        than every cheaper or equally cheap one (of equal points, the earliest trial)."""
        out: list[Trial] = []
        top = -math.inf
        for t in sorted(self.scored().full(), key=lambda t: (t.nominal_cost, _rank(t))):
            if t.score is not None and t.score > top:
                out.append(t)
                top = t.score
        return out

    def top_by_iteration(self) -> dict[int, float]:
        """The best score of each iteration that scored any trial (for the stop rules)."""
        tops: dict[int, float] = self._answer("top_by_iteration", _TOPS)
        return dict(tops)

    def scores(self) -> list[float]:
        """The scores of the scored trials, in trial order."""
        return [t.score for t in self.scored() if t.score is not None]

    def keys(self) -> set[str]:
        """The configuration keys of these trials (a new set: callers add to it)."""
        return set(self._keys)

    def ranked(self) -> list[Trial]:
        """Scored trials, best first: full-fidelity ones before partial ones, then the highest
        score, then the cheaper configuration, then the earlier trial."""
        ranked: list[Trial] = self._answer("ranked", _RANKED)
        return list(ranked)

    def best(self) -> Trial | None:
        """The best full-fidelity trial (a partial score is no result): the first of `ranked`
        when that one is full; ties go to the cheaper configuration, then the earlier trial."""
        return self._answer("best", _BEST)

    def scores_along(self, center: Config, stage: str) -> dict[int, float]:
        """The best score at each sample count of `stage` among the scored trials configured as
        `center` in every other respect (that stage's model included): the line through `center`
        that the insight proposer probes. Read from an index kept up to date as trials arrive."""
        lines: dict[_LineKey, dict[int, float]] = self._answer("lines", _LINES)
        return dict(lines.get(_line(center.root, stage), {}))

    def scored_with_models(self, models: Mapping[str, str]) -> list[Trial]:
        """The scored trials whose stages run exactly `models` (stage -> model), in trial order
        (the points of one response surface). Read from an index kept up to date."""
        groups: dict[tuple[tuple[str, str], ...], tuple[Trial, ...]] = self._answer(
            "model groups", _GROUPS
        )
        return list(groups.get(tuple(sorted(models.items())), ()))

    def executed_within(self) -> list[int]:
        """How many executed trials the first k trials hold, for k = 0..len: a checkpoint's
        archive is a head of the thread's latest one, so reading a thread's history needs one
        parse, not one per checkpoint (free evaluations make archives long)."""
        out = [0]
        for t in self:
            out.append(out[-1] + _is_executed(t))
        return out

    def search_cost(self, *, nominal: bool = False) -> float:
        """What running these trials cost the search (`TrialResult.search_cost`, budget units x
        items, newly drawn samples only; `nominal`: as if nothing were cached); the agent's own
        cost is `AgentUsage.search_cost`."""
        return math.fsum(_cost(t, nominal) for t in self.executed())

    def search_costs(self, *, nominal: bool = False) -> list[float]:
        """The running total of `search_cost` after each executed trial (as `best_so_far`)."""
        out: list[float] = []
        total = 0.0
        for t in self.executed():
            total += _cost(t, nominal)
            out.append(total)
        return out

    def best_so_far(self, within: float | None = None) -> list[float | None]:
        """The best full-fidelity score after each executed trial (rejected proposals are not
        trials; a partial score is not a result; a derived result counts from its source on);
        `within`: among the results that fit that budget (a frontier search's budget)."""
        fits = self if within is None else self.within(within)
        freed: dict[int, float] = {}
        for t in fits.derived().full().scored():
            if t.derived_from is not None and t.score is not None:
                freed[t.derived_from] = max(t.score, freed.get(t.derived_from, -math.inf))
        out: list[float | None] = []
        best: float | None = None
        counted = fits.executed().keys() if within is not None else None
        for t in self.executed():
            fit = counted is None or t.config.key() in counted
            found = [t.score] if fit and _is_full(t) and t.score is not None else []
            found += [freed[t.trial_id]] if t.trial_id in freed else []
            for score in found:
                if best is None or score > best:
                    best = score
            out.append(best)
        return out

    def curves(self) -> list[Curve]:
        """Per stage and model, score by sample count (insight 2's evidence, which free
        evaluations fill in): the line through the best scored trial that runs that model on
        that stage, every other stage as in it. Stages in pipeline order, models best first."""
        curves: list[Curve] = self._answer("curves", _Query(_curves))
        return list(curves)


@dataclass(frozen=True)
class _Query(Generic[T]):
    """A derived value of an archive: `compute` reads the whole archive once; `extend`, where
    given, updates the value of an archive with the trials appended to it (`tail`) alone."""

    compute: Callable[[Archive], T]
    extend: Callable[[T, Archive], T] | None = None


def _is_executed(t: Trial) -> bool:
    return t.status != "rejected" and t.derived_from is None


def _is_derived(t: Trial) -> bool:
    return t.derived_from is not None


def _is_evaluated(t: Trial) -> bool:
    return t.status != "rejected"


def _cost(t: Trial, nominal: bool) -> float:
    return t.nominal_search_cost if nominal else t.search_cost


def _is_scored(t: Trial) -> bool:
    return t.status == "ok" and t.score is not None


def _is_failed(t: Trial) -> bool:
    return t.status == "failed"


def _is_rejected(t: Trial) -> bool:
    return t.status == "rejected"


def _is_full(t: Trial) -> bool:
    return t.status != "rejected" and t.fidelity >= 1.0


def _rank(t: Trial) -> tuple[bool, float, float, int]:
    return (not _is_full(t), -(t.score or 0.0), t.nominal_cost, t.trial_id)


def _tops(trials: Iterable[Trial], into: dict[int, float]) -> dict[int, float]:
    for t in trials:
        if not _is_full(t):
            continue
        if t.score is not None and t.score > into.get(t.iteration, -math.inf):
            into[t.iteration] = t.score
    return into


def _ranked_with(ranked: list[Trial], tail: Archive) -> list[Trial]:
    out = list(ranked)
    for t in tail.scored():
        bisect.insort(out, t, key=_rank)
    return out


def _best_of(best: Trial | None, tail: Archive) -> Trial | None:
    return min((t for t in (best, tail.best()) if t is not None), key=_rank, default=None)


_TOPS: _Query[dict[int, float]] = _Query(
    lambda a: _tops(a.scored(), {}), lambda tops, tail: _tops(tail.scored(), dict(tops))
)
_RANKED: _Query[list[Trial]] = _Query(lambda a: sorted(a.scored(), key=_rank), _ranked_with)
_BEST: _Query[Trial | None] = _Query(
    lambda a: min(a.scored().full(), key=_rank, default=None), _best_of
)


_LineKey = tuple[str, tuple[tuple[str, str, int | None], ...]]


def _line(config: Mapping[str, StageConfig], stage: str) -> _LineKey:
    """A configuration with `stage`'s sample count left open."""
    return stage, tuple(
        (n, c.model, None if n == stage else c.samples) for n, c in sorted(config.items())
    )


def _with_lines(
    lines: dict[_LineKey, dict[int, float]], tail: Archive
) -> dict[_LineKey, dict[int, float]]:
    """`lines` updated with the scored trials of `tail` (copied where touched: the lines of the
    archive this one extends stay as they are)."""
    out, fresh = dict(lines), set()
    for t in tail.scored():
        for stage, chosen in t.config.items():
            key = _line(t.config.root, stage)
            if key not in fresh:
                out[key] = dict(out.get(key, {}))
                fresh.add(key)
            line = out[key]
            line[chosen.samples] = max(line.get(chosen.samples, -1.0), t.score or 0.0)
    return out


def _with_groups(
    groups: dict[tuple[tuple[str, str], ...], tuple[Trial, ...]], tail: Archive
) -> dict[tuple[tuple[str, str], ...], tuple[Trial, ...]]:
    added: dict[tuple[tuple[str, str], ...], list[Trial]] = {}
    for t in tail.scored():
        added.setdefault(tuple(sorted((n, c.model) for n, c in t.config.items())), []).append(t)
    return {**groups, **{k: (*groups.get(k, ()), *v) for k, v in added.items()}}


_LINES: _Query[dict[_LineKey, dict[int, float]]] = _Query(lambda a: _with_lines({}, a), _with_lines)


@dataclass(frozen=True)
class Curve:
    """One stage's score by sample count on one model, the other stages as in `through`."""

    stage: str
    model: str
    through: Trial  # the best scored trial with this model on this stage
    scores: dict[int, float]  # S -> the best score seen there

    @property
    def peak(self) -> int:
        """The sample count scoring highest (ties: the fewest samples)."""
        return max(self.scores, key=lambda s: (self.scores[s], -s))


def _curves(archive: Archive) -> list[Curve]:
    ranked = [t for t in archive.ranked() if _is_full(t)]
    through: dict[tuple[str, str], Trial] = {}
    for t in ranked:  # best first: the first trial met per (stage, model) is its best
        for stage, chosen in t.config.items():
            through.setdefault((stage, chosen.model), t)
    stages = list(ranked[0].config.root) if ranked else []
    return [
        Curve(stage, model, t, archive.scores_along(t.config, stage))
        for stage in stages
        for (name, model), t in through.items()
        if name == stage
    ]


_GROUPS: _Query[dict[tuple[tuple[str, str], ...], tuple[Trial, ...]]] = _Query(
    lambda a: _with_groups({}, a), _with_groups
)


def _checked(
    items: Iterable[Trial | Mapping[str, Any]],
) -> tuple[tuple[Trial, ...], tuple[str, ...]]:
    """Trials validated from state dicts, with their configuration keys (computed once here)."""
    trials = tuple(t if isinstance(t, Trial) else Trial.model_validate(t) for t in items)
    test = [t.trial_id for t in trials if t.phase == "test"]
    if test:
        raise ValueError(f"trial(s) {test} ran on the test split: they belong in test_result")
    return trials, tuple(t.config.key() for t in trials)


class _Parses:
    """The last few archives parsed from state lists, with the items they were parsed from.

    A node's state list is the previous step's list with the step's new dicts appended (the
    delta channel's reducer keeps the same dict objects), so a list whose head holds the very
    items of a remembered parse (by identity) validates only its tail. A list read back from a
    checkpoint, or replaced in Studio, holds new dicts and is parsed whole. State values are never
    mutated in place (an update is a new value), which is what makes identity a sound key; the
    items are kept referenced, so an id is never reused while remembered.
    """

    def __init__(self, size: int = 8) -> None:
        self._recent: deque[tuple[tuple[Any, ...], Archive]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def parse(self, items: Sequence[Trial | Mapping[str, Any]]) -> Archive:
        items = tuple(items)
        with self._lock:
            recent = sorted(self._recent, key=lambda e: -len(e[0]))
        base = next((a for head, a in recent if _is_head(head, items)), None)
        if base is None:
            base = Archive._of((), ())
        if len(base) == len(items):
            return base
        archive = base._extended(items[len(base) :])
        with self._lock:
            self._recent.append((items, archive))
        return archive


def _is_head(head: tuple[Any, ...], items: tuple[Any, ...]) -> bool:
    n = len(head)
    return (
        n <= len(items)
        and head[-1] is items[n - 1]  # the cheap test first: most candidates fail here
        and all(map(operator.is_, head, items))  # map stops at the end of head
    )


_PARSES = _Parses()
