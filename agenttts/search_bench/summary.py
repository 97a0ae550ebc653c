"""What the bench's runs add up to: per task and method, and racing against no racing.

Pure functions of the run records (`harness.RunRecord`), so a bench read back from its JSON and
one just run summarise alike. An optimum a run never reached counts as infinitely many trials (or
an infinite cost): a median is finite only when at least half the runs reached it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agenttts.search_bench.methods import Method

if TYPE_CHECKING:
    from agenttts.search_bench.harness import RunRecord


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def summarize(records: Sequence[RunRecord], max_trials: int) -> list[dict[str, Any]]:
    """Per (task, method): medians over seeds. An unreached optimum counts as infinitely many
    trials, so the median is finite only when at least half the seeds reached it."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.task, r.method), []).append(r)
    out = []
    for (task, method), runs in groups.items():
        hits = [r.trials_to_optimum if r.trials_to_optimum else math.inf for r in runs]
        med = median(hits)
        secs = [r.seconds_to_optimum for r in runs if r.seconds_to_optimum is not None]
        tests = [r.test_score for r in runs if r.test_score is not None]
        bests = [r.best_score for r in runs if r.best_score is not None]
        out.append(
            {
                "task": task,
                "method": method,
                "runs": len(runs),
                "reached": sum(1 for r in runs if r.trials_to_optimum),
                "median_trials_to_optimum": None if med is None or math.isinf(med) else med,
                "median_batches_to_optimum": finite(median(_batches(runs))),
                "median_seconds_to_optimum": median(secs) if len(secs) * 2 > len(runs) else None,
                "mean_best_train": sum(bests) / len(bests) if bests else None,
                "mean_test": sum(tests) / len(tests) if tests else None,
                "mean_trials": sum(r.trials for r in runs) / len(runs),
                "mean_agent_calls": sum(r.agent_calls for r in runs) / len(runs),
                "mean_agent_tokens": sum(
                    r.agent_prompt_tokens + r.agent_completion_tokens for r in runs
                )
                / len(runs),
                "mean_environment_calls": sum(r.environment_calls for r in runs) / len(runs),
                "mean_wall_s": sum(r.wall_s for r in runs) / len(runs),
                "max_trials": max_trials,
                "median_search_cost_to_optimum": finite(median(_costs(runs))),
                "median_cost_multiple_to_optimum": finite(median(_costs(runs, multiple=True))),
                "median_nominal_multiple_to_optimum": finite(
                    median(_costs(runs, multiple=True, nominal=True))
                ),
                "median_derived_to_optimum": _of_reached(runs, "derived_to_optimum"),
                "median_init_share_to_optimum": _of_reached(runs, "init_share_to_optimum"),
                "mean_derived": sum(r.derived for r in runs) / len(runs),
                "mean_search_cost": sum(r.search_cost for r in runs) / len(runs),
                "mean_agent_search_cost": sum(r.agent_search_cost for r in runs) / len(runs),
                "mean_agent_seconds": sum(r.agent_seconds for r in runs) / len(runs),
                "mean_partial_trials": sum(r.partial_trials for r in runs) / len(runs),
                "agent_failed_steps": sum(r.agent_failed_steps for r in runs),
                "agent_errors": sum(r.agent_failures for r in runs),
                **{
                    f"total_{k}": sum(getattr(r, k) for r in runs)
                    for k in ("agent_as_is", "agent_repaired", "agent_topped_up", "agent_rejected")
                },
            }
        )
    return out


def _costs(
    runs: Sequence[RunRecord], *, multiple: bool = False, nominal: bool = False
) -> list[float]:
    """Each run's search cost to the optimum (or its multiple; `nominal`: as if nothing were
    cached); an unreached one is infinite."""
    out = []
    for r in runs:
        if nominal:
            value = r.nominal_multiple_to_optimum if multiple else r.nominal_cost_to_optimum
        else:
            value = r.cost_multiple_to_optimum if multiple else r.search_cost_to_optimum
        out.append(math.inf if value is None else value)
    return out


def _of_reached(runs: Sequence[RunRecord], name: str) -> float | None:
    """The median of a figure taken at the optimum, over the runs that reached it (None unless
    more than half did, as for the other medians)."""
    values = [v for r in runs if r.trials_to_optimum and (v := getattr(r, name)) is not None]
    return median(values) if len(values) * 2 > len(runs) else None


def _batches(runs: Sequence[RunRecord]) -> list[float]:
    """Each run's batch that reached the optimum; an unreached one is infinite."""
    return [math.inf if r.batches_to_optimum is None else r.batches_to_optimum for r in runs]


def finite(value: float | None) -> float | None:
    """A median as reported: None when no run, or fewer than half the runs, reached it."""
    return None if value is None or math.isinf(value) else value


def racing_comparison(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Each racing method against the same method without racing, per task and then over all
    tasks: median search cost to the optimum (unreached: infinite) and their ratio; the median
    per-seed ratio over the seeds that reached it both ways (finite where the medians are not);
    and the seeds that reached the optimum without racing but not with it ("lost") or the other
    way ("gained")."""
    plain: dict[tuple[str, str, int], RunRecord] = {}
    for r in records:
        if r.racing is None:
            plain[(r.task, r.method, r.seed)] = r
    pairs: dict[tuple[str, str, str], list[tuple[RunRecord, RunRecord]]] = {}
    for r in records:
        if r.racing is None:
            continue
        base = plain.get((r.task, Method.parse(r.method).plain, r.seed))
        if base is not None:
            for task in (r.task, "all tasks"):
                pairs.setdefault((task, base.method, r.method), []).append((base, r))
    out = []
    for (task, off_name, on_name), runs in sorted(
        pairs.items(), key=lambda p: p[0][0] == "all tasks"
    ):
        both = [
            a.search_cost_to_optimum / b.search_cost_to_optimum
            for a, b in runs
            if a.search_cost_to_optimum and b.search_cost_to_optimum
        ]
        off = median(_costs([a for a, _ in runs]))
        on = median(_costs([b for _, b in runs]))
        ratio = None
        if off is not None and on is not None and not math.isinf(off) and on > 0:
            ratio = off / on
        out.append(
            {
                "task": task,
                "method": off_name,
                "racing_method": on_name,
                "runs": len(runs),
                "median_cost_without": finite(off),
                "median_cost_with": finite(on),
                "cost_ratio": None if ratio is None or math.isinf(ratio) else ratio,
                "paired_cost_ratio": median(both),
                "paired_runs": len(both),
                "reached_without": sum(1 for a, _ in runs if a.trials_to_optimum),
                "reached_with": sum(1 for _, b in runs if b.trials_to_optimum),
                "lost": sum(1 for a, b in runs if a.trials_to_optimum and not b.trials_to_optimum),
                "gained": sum(
                    1 for a, b in runs if b.trials_to_optimum and not a.trials_to_optimum
                ),
            }
        )
    return out
