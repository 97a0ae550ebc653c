"""Racing on training items: a configuration earns the whole training split by staying in the race.

Multi-fidelity search for every proposer, in the style of Hyperband's successive halving and of
irace's racing: a new configuration first runs on a share of the training items, and runs on more
of them only while it can still tie or beat the configurations it is compared with. The setting is
`racing` (the first share, e.g. 0.25) in `graph/context.py`. This module is the whole engine: the
rule, and the rungs (`race_round`), which `nodes/execute_trials.py` runs one checkpointed step
each. The initial trials (`nodes/init_trials.py`) race too, among themselves, in one step
(`race_to_end`): see the rule.

**Item order.** One permutation of the training split per run, drawn from the run's seed. Every
configuration sees the items in that order, so two configurations are always compared on the same
items (blocking, as irace blocks on instances: a subset that happens to be hard is hard for both),
and a live pipeline's cache serves what another configuration already drew on those items.

**Rungs.** A configuration first runs the first m_0 = ceil(share * n) items; each promotion runs the
items up to m_(k+1) = min(n, 2 * m_k), until the whole split (n). A rung runs only items not run
before, and its result is combined with the earlier rungs' (`TrialResult.combined`): no item is
evaluated twice, and a configuration that reaches the end has exactly the full-split result it
would have had without racing.

**Rule** (after each rung, for a configuration c that has seen m of the n items): a paired racing
test, as irace's t-test race. Its references are the incumbent (the best trial evaluated on the
whole split so far, this round's included) and the other configurations of its batch that have
seen the same items. Against a reference r, with d_j = x_c,j - x_r,j on the m shared items (x the
main metric of one item, in [0, 1]), c stays in the race while, against every reference,

    mean(d) + z * sd(d) / sqrt(m) * sqrt((n - m) / (n - 1))  >=  0,      z = `Z` = 2

i.e. while the upper confidence bound of its mean difference over the whole split still allows a
tie or a win. The last factor is the finite-population correction: the items are drawn without
replacement from a finite split, so the bound closes on the exact difference when every item is
seen. Ties are kept: a tie with the incumbent that costs less becomes the best configuration.
Against a reference without per-item scores on those items (a full trial recorded before racing
was on), the test is c's one-sided Wilson upper bound on its own full-split score, with the same
correction, against the reference's score.

**The initial trials' race.** The initial trials compare each stage's models, everything else
equal (insight 1), and the proposer's preference step reads their scores, so they are not raced
against the incumbent or across stages: two initial trials are compared only when they differ in
exactly one stage (`stage_apart`), and a trial stays while, in at least one stage's comparison it
takes part in, it can still tie or beat every other member by the same test (the trial that
every stage's comparison shares, all stages on their largest model with one sample, stays while
it is still evidence for one stage). Within a stage's comparison the member with the best mean
on the items seen has no negative mean difference, so it is never dropped: each stage's best
runs every item, and a dropped model is one the paired test separated from a member of each of
its comparisons, scored by its estimate (below) against the best of them. The whole race is one
step of `init_trials`.

**How it avoids dropping the true optimum on a noisy subset.** The comparison is paired: the
optimum and the incumbent are scored on the same items, so a subset that happens to be hard (or
easy) moves both alike, and only the items they disagree on move the difference. A configuration
that never disagreed with its reference has sd = 0 and a mean of 0: it stays. The bound is wide
while few items are seen, so the first rung drops only the clearly worse. Monte Carlo on a 50-item
split with rungs at 13 and 26 items (first share 0.25; `tests/unit/test_racing.py` holds the
simulation): a configuration better than the incumbent by 1-2 items of 50 is dropped with
probability 0 to 3% (0 when it loses at most one item), an exact tie 5-7%; one worse by 7 items
runs on average 47% of the items, by 12 items 35%. Rungs at 7, 14 and 28 (first share 0.125)
give the same rates within a point, and the same shares (48%, 32%): a smaller first rung only
drops the very worst earlier. An initial trial is dropped only when it is separated in every
comparison it takes part in, so its false-drop rate is at most the same. With outcomes nested
across configurations (the simulated tasks: a better configuration solves every item a worse one
solves) a configuration never loses an item to a worse reference, so it is never dropped.

A configuration dropped from the race is recorded with its fidelity (items seen / n), its metrics
over the items it saw, and as its score the paired estimate of its full-split score: the final
incumbent's score (an initial trial: the best full trial it was compared with) plus the mean
difference on the items both saw (`estimate`; a control variate:
its error is the paired difference's, far smaller than the raw partial mean's when outcomes are
correlated, so proposers that compare scores item by item are misled as little as the data
allows). Proposers see it marked as partial (`Trial.fidelity`; the LLM archive view says so), and
only full-fidelity trials can be the best (`Archive.best`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from agenttts.archive import Archive, trials_from
from agenttts.environment import registry
from agenttts.environment.executor import HasItems, TrialResult
from agenttts.environment.space import Config, derived_seed
from agenttts.environment.task import Task
from agenttts.errors import InputError

#: One-sided z of the racing test's upper bounds (about 2.3% per bound).
Z = 2.0


@dataclass(frozen=True)
class Race:
    """One run's racing plan: the training items' order and the first rung's size."""

    order: tuple[int, ...]
    first: int

    @property
    def n(self) -> int:
        return len(self.order)

    def rungs(self) -> list[int]:
        """Items seen after each rung: m_0, 2 m_0, 4 m_0, ..., n."""
        out = [self.first]
        while out[-1] < self.n:
            out.append(min(self.n, 2 * out[-1]))
        return out

    def next_items(self, seen: int) -> tuple[int, ...]:
        """The items of the rung after `seen` items (the first rung for 0)."""
        upto = self.first if seen == 0 else min(self.n, 2 * seen)
        return self.order[seen:upto]


def check(task: Task, share: float | None) -> None:
    """InputError, before anything is spent, when this task's executor cannot race."""
    if share is None:
        return
    executor = registry.make_executor(task)  # holds nothing: asking for a capability is free
    if not isinstance(executor, HasItems):
        raise InputError(
            f"racing needs per-item results, and the {task.environment.kind} executor of task "
            f"{task.name!r} holds aggregate scores only; run it without --racing"
        )


def plan(task: Task, share: float, seed: int) -> Race:
    """The racing plan of a run: items in an order drawn from its seed, rungs from `share`."""
    check(task, share)
    executor = registry.make_executor(task)
    assert isinstance(executor, HasItems)
    n = executor.split_size("train")
    order = list(range(n))
    random.Random(derived_seed("racing", seed)).shuffle(order)
    return Race(order=tuple(order), first=min(n, max(1, math.ceil(share * n))))


def wilson(p: float, m: int, n: int, z: float, upper: bool) -> float:
    """One-sided Wilson bound on the rate over a finite split of n items, from rate p on m of them
    (drawn without replacement: the finite-population correction shrinks z to 0 at m = n)."""
    if m <= 0:
        return 1.0 if upper else 0.0
    z = z * math.sqrt(max(0.0, (n - m) / max(1, n - 1)))
    z2 = z * z
    center = (p + z2 / (2 * m)) / (1 + z2 / m)
    half = z / (1 + z2 / m) * math.sqrt(max(0.0, p * (1 - p) / m + z2 / (4 * m * m)))
    return min(1.0, center + half) if upper else max(0.0, center - half)


def paired_upper(diffs: Sequence[float], n: int, z: float) -> float:
    """Upper confidence bound on the mean per-item difference over the whole split of n items,
    from the differences on m of them (drawn without replacement): mean + z * sd / sqrt(m) *
    sqrt((n - m) / (n - 1)), sd the sample standard deviation (n - 1 denominator)."""
    m = len(diffs)
    if m == 0:
        return math.inf
    mean = sum(diffs) / m
    if m == 1:
        return math.inf if m < n else mean
    var = sum((d - mean) ** 2 for d in diffs) / (m - 1)
    fpc = math.sqrt(max(0.0, (n - m) / max(1, n - 1)))
    return mean + z * math.sqrt(var / m) * fpc


def _scores(r: TrialResult) -> dict[int, float] | None:
    if r.item_ids is None or r.item_scores is None or len(r.item_ids) != len(r.item_scores):
        return None
    return dict(zip(r.item_ids, r.item_scores, strict=True))


def can_still_win(
    c: TrialResult, ref: TrialResult, main_metric: str, z: float | None = None
) -> bool:
    """Whether `c` (partial) can still tie or beat `ref` on the whole split (the module's rule)."""
    z = Z if z is None else z
    mine = _scores(c)
    if mine is None or not mine:
        return True  # nothing to judge on: the race goes on
    n = c.split_size
    m = len(mine)
    theirs = _scores(ref)
    if theirs is not None and all(j in theirs for j in mine):
        return paired_upper([x - theirs[j] for j, x in mine.items()], n, z) >= -1e-12
    if ref.fidelity >= 1.0 and ref.ok and main_metric in ref.metrics:
        mean = sum(mine.values()) / m
        return wilson(mean, m, n, z, upper=True) >= ref.metrics[main_metric] - 1e-12
    return True  # a reference on other items, without per-item scores: no comparison


def estimate(c: TrialResult, ref: TrialResult | None, main_metric: str) -> float | None:
    """A partial `c`'s estimate of its full-split score: `ref`'s full score plus the mean paired
    difference on the items both saw; None without a full reference scored on those items."""
    mine, theirs = _scores(c), _scores(ref) if ref is not None else None
    if ref is None or not mine or theirs is None or ref.fidelity < 1.0:
        return None
    if not all(j in theirs for j in mine) or main_metric not in ref.metrics:
        return None
    diff = sum(x - theirs[j] for j, x in mine.items()) / len(mine)
    return min(1.0, max(0.0, ref.metrics[main_metric] + diff))


def stays(
    results: Sequence[TrialResult],
    incumbent: TrialResult | None,
    main_metric: str,
    z: float | None = None,
    groups: Callable[[int, int], Hashable | None] | None = None,
) -> list[bool]:
    """For one round of a race (results at their latest rung), which partial ones run on.

    A search batch's race (`groups` None): those that can still tie or beat the incumbent and
    every batch-mate that has seen their items. The initial trials' race: `groups(i, k)` names
    the comparison result i takes part in with result k (None: none), and i runs on while, in at
    least one of its comparisons, it can still tie or beat every other member (a trial in several
    comparisons, such as the one every stage's comparison shares, is still evidence in the others
    when it loses one). Full or failed results never stay (they are done)."""
    out = []
    for i, c in enumerate(results):
        if not c.ok or c.fidelity >= 1.0:
            out.append(False)
            continue
        refs: dict[Hashable | None, list[TrialResult]] = {}
        for k, r in enumerate(results):
            group = None if groups is None else groups(i, k)
            if k != i and r.ok and (groups is None or group is not None):
                refs.setdefault(group, []).append(r)
        if groups is None and incumbent is not None:
            refs.setdefault(None, []).append(incumbent)
        out.append(
            not refs
            or any(all(can_still_win(c, r, main_metric, z) for r in rs) for rs in refs.values())
        )
    return out


def stage_apart(a: Config, b: Config) -> str | None:
    """The one stage two configurations differ in (None: none or several): with everything else
    equal, they compare that stage's choices, as the initial trials do."""
    differ = [name for name, choice in a.items() if b[name] != choice]
    return differ[0] if len(differ) == 1 else None


def with_estimates(
    task: Task,
    trials: list[dict[str, Any]],
    results: list[TrialResult],
    references: list[TrialResult | None],
) -> list[dict[str, Any]]:
    """The trials, a trial dropped from the race scored by its paired estimate against its
    reference (`estimate`). New dicts: state values are never changed in place
    (`Archive.from_state` relies on it)."""
    out = []
    for t, r, ref in zip(trials, results, references, strict=True):
        guess = estimate(r, ref, task.main_metric) if r.ok and r.fidelity < 1.0 else None
        out.append(t if guess is None else {**t, "score": guess})
    return out


def best_full_mate(task: Task, r: TrialResult, results: list[TrialResult]) -> TrialResult | None:
    """The reference of a dropped initial trial's estimate: the best full trial it raced (one
    that differs from it in exactly one stage)."""
    full = [
        o
        for o in results
        if o.ok and o.fidelity >= 1.0 and stage_apart(o.config, r.config) is not None
    ]
    return max(full, key=lambda o: o.metrics.get(task.main_metric, 0.0), default=None)


def race_round(
    task: Task,
    race: Race,
    archive: list[dict[str, Any]],
    entries: list[dict[str, Any]],
    groups: Callable[[Config, Config], Hashable | None] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One rung of a race: every entry ({config, rationale, prior?, done?}) still racing runs its
    next items, combined into its `prior`; the rule (`stays`) marks the others `done`.
    Returns the entries and whether any still races. `archive`: the state's trial dicts.
    `groups`: the initial trials' race, where entries are compared in the groups it names
    (`stays`), not with the incumbent; None: a search batch's race (incumbent and batch)."""
    trials = Archive.from_state({"archive": archive})
    configs = [Config.model_validate(e["config"]) for e in entries]
    priors = [TrialResult.model_validate(e["prior"]) if e.get("prior") else None for e in entries]
    in_flight = [p for p in priors if p is not None]  # their samples are drawn: a replay's cache
    results = [
        p if p is not None else TrialResult(config=c, split="train")
        for p, c in zip(priors, configs, strict=True)
    ]
    rungs: dict[tuple[int, ...], list[int]] = {}
    for i, prior in enumerate(priors):
        if not entries[i].get("done"):
            seen = prior.items_evaluated if prior else 0
            rungs.setdefault(race.next_items(seen), []).append(i)
    for items, which in rungs.items():
        ran = registry.run_batch(
            task,
            [configs[i] for i in which],
            "train",
            items=items,
            earlier=[*trials.executed(), *in_flight],
        )
        for i, r in zip(which, ran, strict=True):
            prior = priors[i]
            results[i] = r if prior is None else prior.combined(r)

    now = [i for which in rungs.values() for i in which]
    if groups is None:
        full = [r for r in results if r.ok and r.fidelity >= 1.0]
        provisional = trials_from(task, full, first_id=len(archive), **_PROVISIONAL)
        incumbent = Archive.from_state({"archive": [*archive, *provisional]}).best()
        stay = stays([results[i] for i in now], incumbent, task.main_metric)
    else:
        stay = stays(
            [results[i] for i in now],
            None,
            task.main_metric,
            groups=lambda a, b: groups(configs[now[a]], configs[now[b]]),
        )
    running = {i for i, s in zip(now, stay, strict=True) if s}
    out = [
        {**e, "prior": r.model_dump(mode="json"), "done": i not in running}
        for i, (e, r) in enumerate(zip(entries, results, strict=True))
    ]
    return out, bool(running)


def race_to_end(
    task: Task,
    race: Race,
    archive: list[dict[str, Any]],
    configs: list[Config],
    groups: Callable[[Config, Config], Hashable | None] | None = None,
) -> list[TrialResult]:
    """A whole race in one step (`race_round` until none races): each configuration's result,
    full or dropped, in the order given."""
    entries: list[dict[str, Any]] = [{"config": c.model_dump(mode="json")} for c in configs]
    running = bool(entries)
    while running:
        entries, running = race_round(task, race, archive, entries, groups)
    return [TrialResult.model_validate(e["prior"]) for e in entries]


#: Bookkeeping of the provisional trials `race_round` ranks (only their scores and costs count).
_PROVISIONAL: dict[str, Any] = {"iteration": 0, "proposer": "race"}
