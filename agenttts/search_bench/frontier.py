"""The bench's frontier mode: one search of several budgets against one search per budget.

For each task, method and seed it runs the frontier search (`agenttts.frontier`: every budget in
one thread, sharing its archive and sample cache) and, from the same seed, one search per budget,
and measures against each budget's exhaustive optimum (`optimum.exhaustive_optimum` of the task
at that budget):

- reach: whether each budget's optimum was reached (within the tolerance) by the run's cap;
- the cache-aware search cost to reach every budget's optimum (`TrialResult.search_cost`: the
  paper's unit x items, newly drawn samples only): the shared search's running total at the last
  budget's hit; the separate searches' hits summed (each pays for its own samples).

The shared search gets the separate searches' trial caps together (budgets x `max_trials`), so
neither side may run more trials. An LLM method's agent cost is not counted here (see the main
bench for it). Outputs: `frontier.json`, `frontier.md` (the table) and one frontier plot per
task (the shared search of the first seed, `frontier_report.frontier_figure`).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agenttts import frontier
from agenttts.archive import Archive
from agenttts.errors import InputError
from agenttts.frontier_report import frontier_figure, frontier_summary, plot_frontier
from agenttts.search_bench.harness import (
    BenchSettings,
    Runner,
    check,
    default_runner,
    reach,
    run_overrides,
)
from agenttts.search_bench.methods import Method
from agenttts.search_bench.optimum import exhaustive_optimum

#: The default budgets: these shares of each task's budget.
DEFAULT_SHARES = (0.25, 0.5, 1.0)


@dataclass
class FrontierRun:
    """One side of one comparison (`shared`: one thread; `separate`: one thread per budget)."""

    task: str
    method: str
    seed: int
    mode: str
    threads: list[str]
    hits: dict[str, int | None]  # by budget label: executed trials (of its thread) to its optimum
    costs: dict[str, float | None]  # by budget label: search cost to reach it
    cost_to_all: float | None  # every budget's optimum reached: the cost to the last of them
    trials: int
    search_cost: float


def _measured(
    archive: Archive, budgets: Sequence[float], optima: Mapping[float, float], tolerance: float
) -> tuple[dict[str, int | None], dict[str, float | None]]:
    costs = archive.executed().search_costs()
    hits: dict[str, int | None] = {}
    paid: dict[str, float | None] = {}
    for b in budgets:
        hit = reach(archive.best_so_far(within=b), optima[b], tolerance)
        hits[frontier.label(b)] = hit
        paid[frontier.label(b)] = costs[hit - 1] if hit is not None else None
    return hits, paid


def run_pair(
    task_path: Path,
    task: Any,
    method: Method,
    seed: int,
    budgets: Sequence[float],
    optima: Mapping[float, float],
    settings: BenchSettings,
    runner: Runner,
) -> tuple[FrontierRun, FrontierRun, Archive]:
    """The shared search and the separate ones, from the same seed; the shared archive."""
    base = f"{task.name}:{method.name}:seed{seed}:frontier"
    cap = settings.max_trials * len(budgets)
    shared = runner(
        str(task_path),
        f"{base}:shared",
        settings.database,
        {**run_overrides(method, seed, settings, cap), "budgets": list(budgets)},
    )
    archive: Archive = shared.trials
    hits, paid = _measured(archive, budgets, optima, settings.tolerance)
    reached = [v for v in paid.values() if v is not None]
    one = FrontierRun(
        task=task.name,
        method=method.name,
        seed=seed,
        mode="shared",
        threads=[f"{base}:shared"],
        hits=hits,
        costs=paid,
        cost_to_all=max(reached) if len(reached) == len(budgets) else None,
        trials=len(archive.executed()),
        search_cost=archive.search_cost(),
    )
    threads, hits, paid, trials, total = [], {}, {}, 0, 0.0
    for b in budgets:
        thread = f"{base}:budget{frontier.label(b)}"
        alone = runner(
            str(task_path),
            thread,
            settings.database,
            {**run_overrides(method, seed, settings), "budgets": [b]},
        ).trials
        h, p = _measured(alone, [b], optima, settings.tolerance)
        threads.append(thread)
        hits |= h
        paid |= p
        trials += len(alone.executed())
        total += alone.search_cost()
    costs = [v for v in paid.values() if v is not None]
    apart = FrontierRun(
        task=task.name,
        method=method.name,
        seed=seed,
        mode="separate",
        threads=threads,
        hits=hits,
        costs=paid,
        cost_to_all=sum(costs) if len(costs) == len(budgets) else None,
        trials=trials,
        search_cost=total,
    )
    return one, apart, archive


def run_frontier_bench(
    settings: BenchSettings,
    shares: Sequence[float] = DEFAULT_SHARES,
    *,
    runner: Runner | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or continue) the frontier comparison; returns the JSON-plain result and writes the
    per-task frontier plots (`plots`: their paths by task)."""
    from agenttts.environment.space import cheapest_config, config_cost

    paths, methods = check(settings)
    if not shares or any(not 0 < s <= 1 for s in shares):
        raise InputError("--frontier: budget shares must be in (0, 1], e.g. 0.25,0.5,1")
    runner = runner or default_runner()
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    tasks: dict[str, Any] = {}
    runs: list[FrontierRun] = []
    plots: dict[str, str] = {}
    for path in paths.values():
        from agenttts.environment.task_loading import load_task

        task = load_task(path)
        budgets = frontier.budgets_of(task, [task.budget * s for s in shares])
        floor = config_cost(task, cheapest_config(task))
        if budgets[0] < floor:
            raise InputError(
                f"task {task.name!r}: budget {budgets[0]:g} is below its cheapest configuration "
                f"({floor:.2f}); use larger shares"
            )
        optima = {
            b: exhaustive_optimum(frontier.at_budget(task, b), settings.tolerance) for b in budgets
        }
        tasks[task.name] = {
            "budgets": budgets,
            "optima": {frontier.label(b): asdict(o) for b, o in optima.items()},
        }
        scores = {b: o.score for b, o in optima.items()}
        for method in methods:
            for seed in settings.seeds:
                one, apart, archive = run_pair(
                    path, task, method, seed, budgets, scores, settings, runner
                )
                runs += [one, apart]
                if progress:
                    progress(
                        f"{task.name} {method.name} seed {seed}: cost to every optimum "
                        f"shared {_num(one.cost_to_all)}, separate {_num(apart.cost_to_all)}"
                    )
                if task.name not in plots:
                    state = {
                        "archive": [t.dump() for t in archive],
                        "settings": {"budgets": budgets},
                    }
                    figure = frontier_figure(
                        frontier_summary(state, task),
                        archive,
                        title=f"{task.name}: {method.name} seed {seed}, budgets "
                        + ", ".join(frontier.label(b) for b in budgets)
                        + " in one search",
                        metric=task.main_metric,
                    )
                    plot = settings.out_dir / f"frontier-{task.name}.png"
                    plot_frontier(figure, plot)
                    plots[task.name] = str(plot)
    return {
        "tolerance": settings.tolerance,
        "max_trials_per_budget": settings.max_trials,
        "batch_size": settings.batch_size,
        "shares": list(shares),
        "seeds": list(settings.seeds),
        "methods": [m.name for m in methods],
        "tasks": tasks,
        "summary": summarize(runs),
        "runs": [asdict(r) for r in runs],
        "plots": plots,
    }


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(runs: Sequence[FrontierRun]) -> list[dict[str, Any]]:
    """Per task and method: how often each side reached every budget's optimum, each budget's
    reach, and the mean cost to reach them all over the seeds where both sides did (with the
    ratio of those means: how many times cheaper the shared search was)."""
    out = []
    keys = list(dict.fromkeys((r.task, r.method) for r in runs))
    for task, method in keys:
        mine = [r for r in runs if (r.task, r.method) == (task, method)]
        shared = {r.seed: r for r in mine if r.mode == "shared"}
        apart = {r.seed: r for r in mine if r.mode == "separate"}
        both = [
            s
            for s in shared
            if s in apart and shared[s].cost_to_all is not None and apart[s].cost_to_all is not None
        ]
        cost_shared = _mean([shared[s].cost_to_all or 0.0 for s in both])
        cost_apart = _mean([apart[s].cost_to_all or 0.0 for s in both])
        labels = list(next(iter(shared.values())).hits) if shared else []
        out.append(
            {
                "task": task,
                "method": method,
                "seeds": len(shared),
                "reach_shared": {
                    b: sum(r.hits[b] is not None for r in shared.values()) for b in labels
                },
                "reach_separate": {
                    b: sum(r.hits[b] is not None for r in apart.values()) for b in labels
                },
                "all_shared": sum(r.cost_to_all is not None for r in shared.values()),
                "all_separate": sum(r.cost_to_all is not None for r in apart.values()),
                "compared_seeds": len(both),
                "cost_shared": cost_shared,
                "cost_separate": cost_apart,
                "times_cheaper": cost_apart / cost_shared if cost_shared and cost_apart else None,
                "trials_shared": _mean([float(r.trials) for r in shared.values()]),
                "trials_separate": _mean([float(r.trials) for r in apart.values()]),
            }
        )
    return out


def _reached(runs: Iterable[FrontierRun], labels: Sequence[str]) -> dict[str, int]:
    """Per budget, the runs that reached its optimum."""
    runs = list(runs)
    return {b: sum(r.hits[b] is not None for r in runs) for b in labels}


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


FRONTIER_HEADER = [
    "task",
    "method",
    "budgets",
    "reached (shared)",
    "reached (separate)",
    "cost to all (shared)",
    "cost to all (separate)",
    "x cheaper",
    "trials (shared / separate)",
]


def frontier_rows(result: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for s in result["summary"]:
        budgets = ", ".join(frontier.label(b) for b in result["tasks"][s["task"]]["budgets"])
        n = s["seeds"]

        rows.append(
            [
                s["task"],
                s["method"],
                budgets,
                _out_of(s["reach_shared"], s["all_shared"], n),
                _out_of(s["reach_separate"], s["all_separate"], n),
                _num(s["cost_shared"]),
                _num(s["cost_separate"]),
                "-" if s["times_cheaper"] is None else f"{s['times_cheaper']:.2f}",
                f"{_num(s['trials_shared'])} / {_num(s['trials_separate'])}",
            ]
        )
    return rows


def _out_of(per: Mapping[str, int], every: int, n: int) -> str:
    return " ".join(f"{c}/{n}" for c in per.values()) + f" (all: {every}/{n})"


def write_frontier(result: Mapping[str, Any], out_dir: Path, command: str) -> dict[str, str]:
    """frontier.json and frontier.md (the table, how it was measured and the command)."""
    from agenttts.report import markdown_table

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "frontier.json").write_text(json.dumps(result, indent=2) + "\n")
    plots = "\n".join(
        f"![{task}]({Path(p).name})" for task, p in (result.get("plots") or {}).items()
    )
    text = "\n".join(
        [
            "# Frontier bench: one search of several budgets against one search per budget",
            "",
            f"Command: `{command}`",
            "",
            f"Budgets: shares {', '.join(map(str, result['shares']))} of each task's budget; seeds "
            f"{', '.join(map(str, result['seeds']))}; batch {result['batch_size']}; each "
            f"separate search capped at {result['max_trials_per_budget']} executed trials, the "
            "shared one at their sum; reach: training score within "
            f"{result['tolerance']:g} of the budget's exhaustive optimum. Cost: the cache-aware "
            "search cost (the paper's budget unit x items, newly drawn samples only) to reach "
            "every budget's optimum, the mean over the seeds where both sides reached them all "
            "(shared: its running total at the last budget's hit; separate: the sum of each "
            "search's total at its hit).",
            "",
            markdown_table(FRONTIER_HEADER, frontier_rows(result)),
            "",
            "reached: seeds reaching each budget's optimum, cheapest budget first.",
            "",
            plots,
            "",
        ]
    )
    (out_dir / "frontier.md").write_text(text)
    return {"json": str(out_dir / "frontier.json"), "markdown": str(out_dir / "frontier.md")}
