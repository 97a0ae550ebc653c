"""A frontier search: several budgets in one thread, sharing its archive and sample cache.

Users rarely know their budget in advance; they ask for the best pipeline at each cost. A thread
given several budgets (the `budgets` setting, else the task's `budgets`) searches them together,
as a thin layer over every proposer:

- The search runs on the task at its widest budget (`search_task`): the screen admits what fits
  the largest budget, and a trial counts for every budget it fits (`Archive.within`).
- Each iteration targets one budget, in rotation (descending, the widest last) among those
  still open (`next_target`): the
  proposer sees the task at that budget and the archive's view of it, exactly as a one-budget
  search would, except that the view already holds what the other budgets found below it. A
  budget starts from its cheaper neighbours' optima (insight 3's trade-offs are how the optimum
  moves as the budget grows), and what a larger budget's iterations find cheaper counts for it.
- The initial trials are every budget's (`initial_plan`), deduplicated.
- The stop rules apply per budget (`BudgetRun`, `advanced`, `judged`): a budget's patience counts
  the iterations that targeted it without improving it (any improvement, whoever found it, resets
  it), and `max_iterations` the iterations that targeted it; the trial cap is the whole search's.
  The search stops when every budget's rule says so, or at the trial cap.
- The result is the best configuration per budget, each run once on the test split, plus the
  Pareto front of everything evaluated (`Archive.front`).

One budget (the default) is no frontier: nothing here changes such a search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from agenttts.archive import Archive, Trial
from agenttts.environment.space import Config
from agenttts.environment.task import Task

#: Iterations in a row a budget's proposals hold nothing new to run before it counts as exhausted
#: (as `check_stop.EMPTY_LIMIT` for the whole search).
EMPTY_LIMIT = 2


def budgets_of(task: Task, asked: Sequence[float] = ()) -> list[float]:
    """The budgets a search covers, ascending: those asked (the setting), else the task's
    `budgets`, else its one budget."""
    return sorted({float(b) for b in (asked or task.budgets or [task.budget])})


def label(budget: float) -> str:
    """A budget as a state key and as shown (`250`, `1e+03` never: `1000`)."""
    return f"{budget:.12g}"


def at_budget(task: Task, budget: float) -> Task:
    """The task with `budget` as its budget (the same object when it already is)."""
    return task if budget == task.budget else task.model_copy(update={"budget": budget})


def search_task(task: Task, budgets: Sequence[float]) -> Task:
    """What the search screens and runs against: the task at the widest budget."""
    return at_budget(task, max(budgets))


def initial_plan(
    initial: Callable[[Task], list[tuple[Config, str]] | None],
    task: Task,
    budgets: Sequence[float],
) -> list[tuple[Config, str]] | None:
    """Every budget's initial trials (`Proposer.initial_configs` at each), the cheapest budget's
    first, each configuration once (its first reason, naming the budget)."""
    if len(budgets) == 1:
        return initial(at_budget(task, budgets[0]))
    out: dict[str, tuple[Config, str]] = {}
    planned = False
    for b in budgets:
        configs = initial(at_budget(task, b))
        planned = planned or configs is not None
        for config, why in configs or ():
            out.setdefault(config.key(), (config, f"budget {label(b)}: {why}"))
    return list(out.values()) if planned else None


@dataclass(frozen=True)
class BudgetRun:
    """One budget's stop bookkeeping (the state's `frontier`, by `label`): iterations that
    targeted it in a row without improving it, proposals in a row with nothing new, and why it
    stopped (None: open); `iterations` that targeted it (`max_iterations` is per budget)."""

    stale: int = 0
    empty: int = 0
    stop: str | None = None
    iterations: int = 0

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> BudgetRun:
        return cls(**raw) if raw else cls()


def runs_of(state: Mapping[str, Any], budgets: Sequence[float]) -> dict[float, BudgetRun]:
    recorded: Mapping[str, Any] = state.get("frontier") or {}
    return {b: BudgetRun.of(recorded.get(label(b))) for b in budgets}


def dumped(runs: Mapping[float, BudgetRun]) -> dict[str, dict[str, Any]]:
    return {label(b): asdict(r) for b, r in runs.items()}


def rotation(budgets: Sequence[float]) -> list[float]:
    """The order a round of iterations targets the budgets: descending, the widest last."""
    order = sorted(budgets, reverse=True)
    return order[1:] + order[:1]


def next_target(
    budgets: Sequence[float], previous: float | None, runs: Mapping[float, BudgetRun]
) -> float | None:
    """The budget the next iteration targets: the next open one after `previous` in `rotation`;
    None when every budget has stopped.

    Descending: a budget's first iteration then sees, below its own initial trials, what the
    wider budgets tried there, and not yet a cheaper budget's optimum, which would anchor a local
    proposer (insight's moves around the incumbent) in the cheap region (measured on sim-2wiki:
    cheapest first, the middle budget took 14 iterations to reach what its own search finds in
    one). The widest last: every trial fits it, so it gains from the others' iterations, its own
    are the dearest, and its initial trials are the fullest set (measured with insight on
    sim-2wiki seed 0: its first iteration found nothing its initial trials had not, and the
    cost to every budget's optimum fell from 298k to 238k with it last;
    docs/search-bench/frontier)."""
    order = rotation(budgets)
    open_ = [b for b in order if runs.get(b, BudgetRun()).stop is None]
    if not open_:
        return None
    after = order.index(previous) if previous in order else -1
    later = [b for b in open_ if order.index(b) > after]
    return later[0] if later else open_[0]


def improved(archive: Archive, budget: float, iteration: int) -> bool:
    """Whether `iteration`'s trials raised the best full score within `budget`."""
    tops = archive.within(budget).top_by_iteration()
    now = tops.get(iteration)
    before = [v for k, v in tops.items() if k < iteration]
    return now is not None and (not before or now > max(before))


def advanced(
    archive: Archive,
    budgets: Sequence[float],
    runs: Mapping[float, BudgetRun],
    *,
    target: float | None,
    iteration: int,
) -> dict[float, BudgetRun]:
    """Every budget's bookkeeping after `iteration` (which targeted `target`): improved (by any
    iteration's trials), its counts start over; else the targeted budget is one iteration
    staler."""
    out: dict[float, BudgetRun] = {}
    for b in budgets:
        run = runs.get(b, BudgetRun())
        done = run.iterations + (b == target)
        if improved(archive, b, iteration):
            run = BudgetRun(iterations=done)
        elif b == target:
            run = BudgetRun(stale=run.stale + 1, empty=run.empty, iterations=done)
        out[b] = run
    return out


def judged(
    archive: Archive,
    runs: Mapping[float, BudgetRun],
    *,
    patience: int | None,
    goal: float | None,
    max_iterations: int,
) -> dict[float, BudgetRun]:
    """`runs` with each budget's stop rule applied under these settings: the goal score reached,
    its iterations used up, patience exhausted, or nothing new proposed for it (None: it goes
    on)."""
    out: dict[float, BudgetRun] = {}
    for b, run in runs.items():
        best = archive.within(b).best()
        stop = None
        if goal is not None and best is not None and best.score is not None and best.score >= goal:
            stop = f"target reached: score {best.score:.4g} >= {goal:g}"
        elif run.iterations >= max_iterations:
            stop = f"maximum iterations reached ({run.iterations} targeting it)"
        elif patience is not None and run.stale >= patience:
            stop = f"patience exhausted: {run.stale} of its iterations without a better score"
        elif run.empty >= EMPTY_LIMIT:
            stop = f"nothing new to propose {run.empty} times in a row (exhausted?)"
        out[b] = BudgetRun(run.stale, run.empty, stop, run.iterations)
    return out


def with_empty(
    runs: Mapping[float, BudgetRun], target: float, empty: bool
) -> dict[float, BudgetRun]:
    """`runs` after a proposal for `target` held something new to run (or nothing)."""
    run = runs.get(target, BudgetRun())
    empties = run.empty + 1 if empty else 0
    return {**runs, target: BudgetRun(run.stale, empties, run.stop, run.iterations)}


def stop_summary(runs: Mapping[float, BudgetRun]) -> str:
    """Why a frontier search stopped: every budget's own reason."""
    return "every budget stopped: " + "; ".join(
        f"{label(b)}: {r.stop}" for b, r in sorted(runs.items())
    )


def bests(archive: Archive, budgets: Sequence[float]) -> dict[float, Trial | None]:
    """Each budget's best full-fidelity trial among those that fit it (one budget: the best)."""
    if len(budgets) == 1:
        return {budgets[0]: archive.best()}
    return {b: archive.within(b).best() for b in budgets}
